#!/usr/bin/env python3
"""Send prompts through OpenRouter and keep an exact log of tokens and cost.

    python track_usage.py "Explain quantum computing in simple terms."
    python track_usage.py "Summarise this" -m anthropic/claude-haiku-4.5 \
        --log-format csv
    python track_usage.py < prompts.txt          # one prompt per non-blank line
    python track_usage.py "Hi" --dry-run         # count and price, send nothing

Every call is appended to a log (JSONL or CSV) with the token counts OpenRouter
billed, local tiktoken estimates beside them, and the cost to book: OpenRouter's
own figure when the response carries one, else an exact decimal computation
from pricing.json. A model with no price is logged with a null cost, never $0.

NOTE: for models outside OpenAI's families the local token counts are
estimates made with a stand-in tokenizer; the counts the API reports are the
billed ones.
"""

from __future__ import annotations

# Only light modules are imported up here, so that --help starts about as fast
# as argparse alone; requests, tiktoken and the rest are imported where used.
import argparse
import json
import os
import sys
from decimal import Decimal

TYPE_CHECKING = False
if TYPE_CHECKING:
    import threading
    from collections.abc import Callable
    from datetime import datetime
    from typing import BinaryIO

    import requests
    import tiktoken

EXIT_OK = 0
EXIT_CALL_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DEFAULT_MODEL = "openai/gpt-4o-mini"
DEFAULT_MAX_TOKENS = 1024
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
APP_TITLE = "track_usage.py"

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PRICING_PATH = os.path.join(SCRIPT_DIR, "pricing.json")
DEFAULT_LOG_STEM = os.path.join(SCRIPT_DIR, "logs", "token_usage")
LOG_FORMATS = ("jsonl", "csv")

ENV_API_KEY = "OPENROUTER_API_KEY"
ENV_BASE_URL = "OPENROUTER_BASE_URL"
ENV_MODEL = "OPENROUTER_MODEL"
ENV_LOG_FILE = "TRACK_USAGE_LOG_FILE"
ENV_DEBUG = "TRACK_USAGE_DEBUG"

PRICING_UNIT = "USD per 1K tokens"
PRICE_KEYS = ("prompt", "completion", "cached_prompt", "cache_write", "request")
REQUIRED_PRICE_KEYS = ("prompt", "completion")
# Suffixes that choose how OpenRouter routes a call, not what it costs.
ROUTING_VARIANTS = ("nitro", "floor", "exacto")

# OpenAI's chat framing: every message costs 3 tokens plus its role, and the
# reply is primed with 3 more.
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING_TOKENS = 3
# Checked in order, so that "gpt-4o" wins over "gpt-4".
OPENAI_ENCODINGS = (
    ("gpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
)
# Stands in for every other tokenizer; such counts are marked approximate.
APPROX_ENCODING = "cl100k_base"
# Used when no tiktoken encoding can be loaded at all.
FALLBACK_TOKENIZER = "utf8_bytes/4"
FALLBACK_BYTES_PER_TOKEN = 4
TOKENIZER_LOAD_TIMEOUT_S = 30.0
# How long a tokenizer load waits for the first request to leave: loading
# holds the GIL for a while, so it runs while the request is on the wire.
TOKENIZER_HOLD_MAX_S = 2.0

SCHEMA_VERSION = 1
LOG_FIELDS = (
    "schema_version",
    "timestamp",
    "request_id",
    "model",
    "model_used",
    "provider",
    "status",
    "error",
    "system",
    "prompt",
    "response",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "token_source",
    "prompt_tokens_estimated",
    "completion_tokens_estimated",
    "tokenizer",
    "tokenizer_approx",
    "pricing_model",
    "price_prompt_per_1k",
    "price_completion_per_1k",
    "pricing_cost",
    "reported_cost",
    "is_byok",
    "total_cost",
    "cost_source",
    "latency_ms",
    "finish_reason",
)
CONTENT_FIELDS = ("system", "prompt", "response")
INT_FIELDS = frozenset(
    {"schema_version", "latency_ms"}
    | {name for name in LOG_FIELDS if name.endswith(("_tokens", "_estimated"))}
)
DECIMAL_FIELDS = frozenset(
    name for name in LOG_FIELDS if name.endswith(("_cost", "_per_1k"))
)
BOOL_FIELDS = frozenset({"tokenizer_approx", "is_byok"})
# A spreadsheet runs a cell starting with one of these as a formula, so such
# CSV cells get a leading "'"; so does a cell starting with "'", which lets a
# reader always strip exactly one.
CSV_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")

EXIT_CODES_HELP = """\
exit codes:
  0    every call succeeded (a dry run: every prompt was counted)
  1    a call failed (its error record is in the log), or an internal error
  2    bad command line, input or configuration: missing API key, unreadable
       or malformed pricing file, empty prompt, stdin that is not UTF-8
  130  interrupted (Ctrl-C)

environment:
  OPENROUTER_API_KEY    the API key (also read from a .env file found from
                        the current folder upwards; see .env.example)
  OPENROUTER_BASE_URL   the API address (default https://openrouter.ai/api/v1)
  OPENROUTER_MODEL      the default model
  TRACK_USAGE_LOG_FILE  the default log file
  TIKTOKEN_CACHE_DIR    where tiktoken keeps its encodings
  TRACK_USAGE_DEBUG=1   show a traceback for an internal error
"""


# ---------------------------------------------------------------------------
# Errors and messages


class TrackUsageError(Exception):
    """An expected failure: one line for the user and a documented exit code."""

    exit_code = EXIT_USAGE


class ConfigError(TrackUsageError):
    """Bad command line, input or configuration (exit code 2)."""


class ApiError(TrackUsageError):
    """A call to OpenRouter failed (exit code 1)."""

    exit_code = EXIT_CALL_FAILED

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# Values that must never reach the terminal: the API key, once it is loaded.
_SECRETS: list[str] = []


def redact(text: str) -> str:
    """Replace every known secret in a text with ***."""
    for secret in _SECRETS:
        text = text.replace(secret, "***")
    return text


def warn(message: str) -> None:
    """Print a one-line warning on stderr."""
    print(redact(f"track_usage: warning: {message}"), file=sys.stderr, flush=True)


def error(message: str) -> None:
    """Print a one-line error on stderr."""
    print(redact(f"track_usage: error: {message}"), file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Money


def plain(value: Decimal) -> str:
    """Write a Decimal in plain notation, without trailing zeros.

    >>> plain(Decimal("1.35E-6")), plain(Decimal("0.037905500")), plain(Decimal(0))
    ('0.00000135', '0.0379055', '0')
    """
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def money(value: Decimal, places: int = 6) -> str:
    """Format USD for people: fixed decimals, rounded half up.

    >>> money(Decimal("0.0002325"))
    '$0.000233'
    """
    from decimal import ROUND_HALF_UP

    return "$" + str(value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP))


# ---------------------------------------------------------------------------
# Prices


class Price:
    """One pricing.json entry: USD per 1K tokens, plus a fee per call."""

    __slots__ = ("model", *PRICE_KEYS)

    def __init__(self, model: str, **usd_per_1k: Decimal) -> None:
        self.model = model
        self.prompt: Decimal = usd_per_1k["prompt"]
        self.completion: Decimal = usd_per_1k["completion"]
        self.cached_prompt: Decimal | None = usd_per_1k.get("cached_prompt")
        self.cache_write: Decimal | None = usd_per_1k.get("cache_write")
        self.request: Decimal = usd_per_1k.get("request", Decimal(0))

    def __repr__(self) -> str:
        return (
            f"Price({self.model!r}, prompt={self.prompt}, completion={self.completion})"
        )


class Usage:
    """Token counts of one call; cached tokens and reasoning tokens are subsets."""

    __slots__ = (
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
    )

    def __init__(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> None:
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.cached_tokens = cached_tokens
        self.cache_write_tokens = cache_write_tokens
        self.reasoning_tokens = reasoning_tokens


def load_pricing(path: str) -> dict[str, Price]:
    """Read pricing.json into a table of prices keyed by model id.

    Numbers are read as exact decimals. Raises ConfigError naming the file, the
    model and the problem when the file is missing or malformed.
    """
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(
            f"cannot read pricing file {path}: {exc.strerror};"
            " pass --pricing PATH to use another file"
        ) from None
    try:
        data = json.loads(
            text,
            parse_float=Decimal,
            parse_int=Decimal,
            parse_constant=_refuse_constant,
        )
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    return parse_pricing(data, path)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a price")


def parse_pricing(data: object, where: str) -> dict[str, Price]:
    """Check a decoded pricing table and turn it into Price objects.

    >>> table = {"unit": "USD per 1K tokens",
    ...          "models": {"a/b": {"prompt": Decimal("0.5"), "completion": 1}}}
    >>> parse_pricing(table, "pricing.json")
    Traceback (most recent call last):
    ...
    track_usage.ConfigError: pricing.json: model "a/b": "completion" must be a \
JSON number of USD per 1K tokens, got 1
    """
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise ConfigError(f'{where}: expected an object with "unit" and "models"')
    if data.get("unit") != PRICING_UNIT:
        raise ConfigError(
            f'{where}: "unit" must be "{PRICING_UNIT}", got {_shown(data.get("unit"))};'
            " convert the prices to USD per 1,000 tokens"
        )
    unknown = sorted(set(data) - {"unit", "updated", "source", "models"})
    if unknown:
        raise ConfigError(f'{where}: unknown top-level key "{unknown[0]}"')
    return {
        model: _parse_price(model, entry, f'{where}: model "{model}"')
        for model, entry in data["models"].items()
    }


def _parse_price(model: str, entry: object, where: str) -> Price:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected an object of prices")
    for key in sorted(set(entry) - set(PRICE_KEYS)):
        raise ConfigError(
            f'{where}: unknown key "{key}" (known: {", ".join(PRICE_KEYS)})'
        )
    for key in REQUIRED_PRICE_KEYS:
        if key not in entry:
            raise ConfigError(f'{where}: "{key}" is missing')
    for key, value in entry.items():
        if not isinstance(value, Decimal):
            raise ConfigError(
                f'{where}: "{key}" must be a JSON number of USD per 1K tokens,'
                f" got {_shown(value)}"
            )
        if value < 0:
            raise ConfigError(f'{where}: "{key}" is negative ({value})')
    return Price(model, **entry)


def _shown(value: object) -> str:
    """Describe a bad JSON value for an error message."""
    if isinstance(value, str):
        return f'the string "{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return "nothing" if value is None else f"{value!r}"


def strip_date(model: str) -> str:
    """Drop a date suffix such as -2024-07-18 or -20260403 from a model id.

    >>> strip_date("openai/gpt-4o-mini-2024-07-18")
    'openai/gpt-4o-mini'
    >>> strip_date("google/gemma-4-26b-a4b-it-20260403:free")
    'google/gemma-4-26b-a4b-it:free'
    """
    import re

    return re.sub(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})(?=$|:)", "", model)


def base_model(model: str) -> str:
    """Reduce a model id to what names the model: no date, no variant.

    >>> base_model("openai/gpt-4o-2024-08-06:nitro")
    'openai/gpt-4o'
    """
    return strip_date(model).partition(":")[0]


def find_price(
    table: dict[str, Price], requested: str, served: str | None = None
) -> Price | None:
    """Find the price of a call: by the model that served it, else the one asked.

    The requested id (with a routing variant such as :nitro ignored) is used
    only when the served model is the same model: a fallback to another model
    is priced as that model or not at all. A :free id costs 0. Returns None when
    nothing matches.

    >>> table = {"openai/gpt-4o": Price("openai/gpt-4o", prompt=1, completion=2)}
    >>> find_price(table, "openai/gpt-4o:nitro", "openai/gpt-4o-2024-08-06").model
    'openai/gpt-4o'
    >>> print(find_price(table, "openai/gpt-4o", "anthropic/claude-haiku-4.5"))
    None
    """
    served = served or requested
    candidates = [served, strip_date(served)]
    if base_model(served) == base_model(requested):
        name, _, variant = requested.partition(":")
        candidates += [requested, name if variant in ROUTING_VARIANTS else requested]
    for model in candidates:
        if model in table:
            return table[model]
    for model in candidates:
        if model.endswith(":free"):
            return Price(model, prompt=Decimal(0), completion=Decimal(0))
    return None


def call_cost(price: Price, usage: Usage) -> Decimal:
    """Compute exactly what a call costs at a table price, in USD.

    Cached tokens and cache writes are part of the prompt tokens and are
    priced at their own rates when the table has them, else at the prompt rate;
    reasoning tokens are part of the completion tokens and are not added again.

    >>> price = Price("x", prompt=Decimal("0.0005"), completion=Decimal("0.0015"))
    >>> call_cost(price, Usage(15, 150))
    Decimal('0.0002325')
    """
    import decimal

    cached_rate = price.prompt if price.cached_prompt is None else price.cached_prompt
    write_rate = price.prompt if price.cache_write is None else price.cache_write
    uncached = max(
        0, usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens
    )
    # Raise rather than round: every figure here fits well within 60 digits.
    exact = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.Rounded])
    with decimal.localcontext(exact):
        usd_per_1k = (
            uncached * price.prompt
            + usage.cached_tokens * cached_rate
            + usage.cache_write_tokens * write_rate
            + usage.completion_tokens * price.completion
        )
        return usd_per_1k / 1000 + price.request


def no_price_message(model: str, pricing_path: str) -> str:
    """Say that a model has no price, and how to add one."""
    return (
        f'no price for "{model}" in {pricing_path}, so its cost is unknown'
        f' (logged as null); add it under "models" in {PRICING_UNIT}, e.g.'
        f' "{model}": {{"prompt": 0.001, "completion": 0.002}}'
    )


# ---------------------------------------------------------------------------
# Counting tokens


def encoding_for_model(model: str) -> tuple[str, bool]:
    """Pick the tiktoken encoding for an OpenRouter model id.

    Returns the encoding name and whether it is the model's own tokenizer;
    False means counts made with it are approximations.

    >>> encoding_for_model("openai/gpt-4o-mini:nitro")
    ('o200k_base', True)
    >>> encoding_for_model("openai/gpt-3.5-turbo")
    ('cl100k_base', True)
    >>> encoding_for_model("anthropic/claude-haiku-4.5")
    ('cl100k_base', False)
    """
    author, _, name = model.partition(":")[0].rpartition("/")
    if author in ("", "openai"):
        for prefix, encoding in OPENAI_ENCODINGS:
            if name.startswith(prefix):
                return encoding, True
    return APPROX_ENCODING, False


class TokenCounter:
    """Counts the tokens of a text, and of a chat as the API frames it."""

    def __init__(
        self, tokenizer: str, approx: bool, count_text: Callable[[str], int]
    ) -> None:
        self.tokenizer = tokenizer
        self.approx = approx
        self.count_text = count_text

    def count_chat(self, messages: list[dict[str, str]]) -> int:
        """Count the prompt tokens a list of chat messages is billed for.

        >>> counter = TokenCounter("words", False, lambda text: len(text.split()))
        >>> counter.count_chat([{"role": "user", "content": "two words"}])
        9
        """
        total = REPLY_PRIMING_TOKENS
        for message in messages:
            total += TOKENS_PER_MESSAGE
            total += self.count_text(message["role"])
            total += self.count_text(message["content"])
        return total


def count_utf8_bytes_per_4(text: str) -> int:
    """Estimate tokens as one per 4 bytes of UTF-8, rounded up.

    >>> count_utf8_bytes_per_4("Hello!")
    2
    """
    return -(-len(text.encode("utf-8")) // FALLBACK_BYTES_PER_TOKEN)


class Tokenizers:
    """Loads tiktoken encodings once each, in background threads.

    With `start_after`, a load waits until that event is set (by the HTTP
    client, once the first request is on the wire), because loading an
    encoding holds the GIL for a while and would otherwise delay the request.
    An encoding that cannot be loaded is reported once on stderr, and counts
    fall back to UTF-8 bytes / 4.
    """

    def __init__(self, start_after: threading.Event | None = None) -> None:
        import threading

        self._start_after = start_after
        self._lock = threading.Lock()
        self._loads: dict[str, tuple[threading.Event, dict]] = {}

    def prefetch(self, model: str) -> None:
        """Start loading the encoding a model needs, without waiting for it."""
        self._load(encoding_for_model(model)[0])

    def counter(self, model: str) -> TokenCounter:
        """Return a counter for a model, waiting for its encoding if needed."""
        name, exact = encoding_for_model(model)
        done, result = self._load(name)
        if not done.wait(TOKENIZER_LOAD_TIMEOUT_S):
            result.setdefault("error", f"not loaded in {TOKENIZER_LOAD_TIMEOUT_S:g} s")
        if "count" in result:
            return TokenCounter(name, not exact, result["count"])
        with self._lock:
            if not result.get("warned"):
                result["warned"] = True
                warn(
                    f'tiktoken encoding "{name}" is unavailable ({result["error"]});'
                    " token estimates use UTF-8 bytes / 4 instead. Set"
                    " TIKTOKEN_CACHE_DIR to a folder holding the encoding, or run"
                    " once with network access"
                )
        return TokenCounter(FALLBACK_TOKENIZER, True, count_utf8_bytes_per_4)

    def _load(self, name: str) -> tuple[threading.Event, dict]:
        import threading

        with self._lock:
            if name not in self._loads:
                self._loads[name] = (threading.Event(), {})
                threading.Thread(
                    target=self._run_load, args=(name, *self._loads[name]), daemon=True
                ).start()
            return self._loads[name]

    def _run_load(self, name: str, done: threading.Event, result: dict) -> None:
        if self._start_after is not None:
            self._start_after.wait(TOKENIZER_HOLD_MAX_S)
        try:
            import tiktoken

            result["count"] = _plain_text_counter(tiktoken.get_encoding(name))
        # tiktoken reports a failed download or a bad cache file in many ways
        # (requests errors, ValueError, OSError): each only means "no encoding".
        except Exception as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            done.set()


def _plain_text_counter(encoding: tiktoken.Encoding) -> Callable[[str], int]:
    """Count with an encoding, taking "<|endoftext|>" as the plain text it is."""

    def count(text: str) -> int:
        try:
            return len(encoding.encode_ordinary(text))
        except UnicodeEncodeError:  # a lone surrogate, as in a broken reply
            return len(encoding.encode_ordinary(text.encode(errors="replace").decode()))

    return count


# ---------------------------------------------------------------------------
# Calling OpenRouter


def build_messages(prompt: str, system: str | None) -> list[dict[str, str]]:
    """Build the chat messages for one prompt."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return messages


class Reply:
    """What a successful call returned, read defensively from the wire format."""

    def __init__(self, body: dict, generation_id: str | None = None) -> None:
        choice = body["choices"][0] if isinstance(body["choices"][0], dict) else {}
        message = (
            choice.get("message") if isinstance(choice.get("message"), dict) else {}
        )
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        content = message.get("content")
        self.text: str | None = content if isinstance(content, str) else None
        self.model_used: str | None = _str_or_none(body.get("model"))
        self.provider: str | None = _str_or_none(body.get("provider"))
        self.request_id: str | None = _str_or_none(body.get("id")) or generation_id
        self.finish_reason: str | None = _str_or_none(choice.get("finish_reason"))
        self.usage = parse_usage(usage)
        self.is_byok: bool | None = usage.get("is_byok") if usage else None
        self.reported_cost = reported_cost(usage)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def parse_usage(usage: dict) -> Usage | None:
    """Read the billed token counts, or None when the response has none.

    >>> u = parse_usage({"prompt_tokens": 10, "completion_tokens": 5,
    ...                  "prompt_tokens_details": {"cached_tokens": 4}})
    >>> u.prompt_tokens, u.cached_tokens, u.reasoning_tokens
    (10, 4, 0)
    """
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not (_is_count(prompt) and _is_count(completion)):
        return None
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Usage(
        prompt,
        completion,
        _count_or_zero(prompt_details.get("cached_tokens")),
        _count_or_zero(prompt_details.get("cache_write_tokens")),
        _count_or_zero(completion_details.get("reasoning_tokens")),
    )


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _count_or_zero(value: object) -> int:
    return value if _is_count(value) else 0  # type: ignore[return-value]


def _is_amount(value: object) -> bool:
    return isinstance(value, (int, Decimal)) and not isinstance(value, bool)


def reported_cost(usage: dict) -> Decimal | None:
    """The dollars OpenRouter says it charged, or None when it did not say.

    A bring-your-own-key call reports only OpenRouter's fee in `cost`; the
    provider's charge is `cost_details.upstream_inference_cost`, so both count.

    >>> reported_cost({"cost": Decimal("0.001"), "is_byok": True,
    ...                "cost_details": {"upstream_inference_cost": Decimal("0.02")}})
    Decimal('0.021')
    """
    cost = usage.get("cost")
    if not _is_amount(cost):
        return None
    if usage.get("is_byok") is True:
        upstream = (usage.get("cost_details") or {}).get("upstream_inference_cost")
        if not _is_amount(upstream):
            return None
        cost += upstream
    return Decimal(cost)


def error_in_body(body: object, http_status: int) -> ApiError | None:
    """Find the error in a response, including one sent with HTTP 200."""
    if not isinstance(body, dict):
        return ApiError(f"HTTP {http_status}: the response is not a JSON object")
    error = body.get("error")
    choices = body.get("choices")
    if error is None and isinstance(choices, list) and choices:
        error = choices[0].get("error") if isinstance(choices[0], dict) else None
    if error is not None:
        return api_error(error, http_status)
    if http_status >= 400:
        return api_error({"message": f"HTTP {http_status}"}, http_status)
    if not isinstance(choices, list) or not choices:
        return ApiError("the response holds neither choices nor an error")
    return None


def api_error(error: object, http_status: int) -> ApiError:
    """Turn OpenRouter's error object into an ApiError with a hint.

    The status is `code` when it is a number, else `http_status`, else the
    HTTP status of the response.

    >>> str(api_error({"code": 402, "message": "Insufficient credits"}, 200))
    'OpenRouter error 402: Insufficient credits (add credits, or lower --max-tokens)'
    """
    if not isinstance(error, dict):
        error = {"message": str(error)}
    status = next(
        (s for s in (error.get("code"), error.get("http_status")) if _is_count(s)),
        http_status,
    )
    message = " ".join(str(error.get("message") or "no message").split())[:500]
    metadata = error.get("metadata") if isinstance(error.get("metadata"), dict) else {}
    if metadata.get("raw"):
        message += f" ({' '.join(str(metadata['raw']).split())[:200]})"
    hint = ERROR_HINTS.get(status) or (ERROR_HINTS[500] if status >= 500 else "")
    return ApiError(f"OpenRouter error {status}: {message}{hint}", status)


ERROR_HINTS = {
    400: " (check the model id and the parameters)",
    401: f" (check {ENV_API_KEY}; see .env.example)",
    402: " (add credits, or lower --max-tokens)",
    403: " (refused by moderation or for lack of permission)",
    404: " (no endpoint serves this model; check the model id)",
    408: " (timed out upstream; try again)",
    429: " (rate limited; wait and try again)",
    500: " (trouble upstream; try again later)",
}


class OpenRouterClient:
    """Posts chat completions to OpenRouter or any endpoint that speaks its API."""

    def __init__(self, base_url: str, api_key: str, timeout_s: float) -> None:
        import threading

        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._api_key = api_key
        self._local = threading.local()

    def chat(self, payload: dict, sent: threading.Event | None = None) -> Reply:
        """Send one chat completion and return its reply, or raise ApiError.

        `sent` is set once the request body has been handed to the socket.
        """
        import requests

        url = f"{self.base_url}/chat/completions"
        body = _BodyThatSignals(json.dumps(payload).encode(), sent)
        try:
            response = self._session().post(url, data=body, timeout=self.timeout_s)
        except requests.Timeout:
            raise ApiError(
                f"no answer from {url} within {self.timeout_s:g} s"
                " (raise --timeout, or try again)"
            ) from None
        except requests.RequestException as exc:
            raise ApiError(
                f"could not reach {url}: {connection_problem(exc)}"
            ) from None
        finally:
            if sent is not None:
                sent.set()
        return read_reply(response)

    def _session(self) -> requests.Session:
        # A requests session is not thread-safe: each thread gets its own.
        session = getattr(self._local, "session", None)
        if session is None:
            import requests

            session = requests.Session()
            session.headers.update(
                {
                    "Authorization": f"Bearer {self._api_key}",
                    "Content-Type": "application/json",
                    "X-Title": APP_TITLE,
                    "X-OpenRouter-Title": APP_TITLE,
                }
            )
            self._local.session = session
        return session


def read_reply(response: requests.Response) -> Reply:
    """Decode a chat completion response, raising ApiError for any error."""
    try:
        body = json.loads(response.content, parse_float=Decimal)
    except ValueError:
        snippet = " ".join(response.text[:100].split())
        raise ApiError(
            f"HTTP {response.status_code}: the response is not JSON: {snippet!r}",
            response.status_code,
        ) from None
    problem = error_in_body(body, response.status_code)
    if problem is not None:
        raise problem
    return Reply(body, response.headers.get("X-Generation-Id"))


def connection_problem(exc: Exception) -> str:
    """Say in a few words why a request got no response.

    >>> connection_problem(OSError("... [Errno 111] Connection refused'))"))
    'Connection refused'
    """
    import re

    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if found:
        return found.group(1).strip()
    if "RemoteDisconnected" in text or "aborted" in text:
        return "the server closed the connection without answering"
    return " ".join(text.split())[:200]


class _BodyThatSignals:
    """A request body that sets an event once the HTTP client has read all of it.

    That is when the request is on the wire, and a background tokenizer load
    may start without slowing it down.
    """

    def __init__(self, data: bytes, sent: threading.Event | None) -> None:
        import io

        self._buffer = io.BytesIO(data)
        self._sent = sent
        self.len = len(data)  # lets requests send a Content-Length

    def read(self, size: int = -1) -> bytes:
        chunk = self._buffer.read(size)
        if not chunk and self._sent is not None:
            self._sent.set()
        return chunk

    def tell(self) -> int:
        return self._buffer.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._buffer.seek(offset, whence)


# ---------------------------------------------------------------------------
# Log records


def utc_now() -> datetime:
    """The current time in UTC."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


def new_record(timestamp: datetime, model: str, messages: list[dict]) -> dict:
    """Start a log record: every field present, unknown values None."""
    record = dict.fromkeys(LOG_FIELDS)
    system = [m["content"] for m in messages if m["role"] == "system"]
    record.update(
        schema_version=SCHEMA_VERSION,
        timestamp=timestamp.isoformat(timespec="milliseconds"),
        model=model,
        system=system[0] if system else None,
        prompt=messages[-1]["content"],
    )
    return record


def add_estimates(record: dict, counter: TokenCounter, messages: list[dict]) -> None:
    """Record the local token estimates and the tokenizer that made them."""
    record["prompt_tokens_estimated"] = counter.count_chat(messages)
    if record["response"] is not None:
        record["completion_tokens_estimated"] = counter.count_text(record["response"])
    record["tokenizer"] = counter.tokenizer
    record["tokenizer_approx"] = counter.approx


def add_reply(record: dict, reply: Reply, prices: dict[str, Price]) -> None:
    """Record a successful call: billed counts, both costs, and which is booked.

    Needs the estimates already in the record: they stand in for the counts
    when the response reports no usage.
    """
    usage = reply.usage
    record["token_source"] = "api" if usage else "estimate"
    if usage is None:
        usage = Usage(
            record["prompt_tokens_estimated"],
            record["completion_tokens_estimated"] or 0,
        )
    record.update(
        status="ok",
        request_id=reply.request_id,
        model_used=reply.model_used,
        provider=reply.provider,
        finish_reason=reply.finish_reason,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.prompt_tokens + usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        is_byok=reply.is_byok,
        reported_cost=reply.reported_cost,
    )
    price = find_price(prices, record["model"], reply.model_used)
    if price is not None:
        record.update(
            pricing_model=price.model,
            price_prompt_per_1k=price.prompt,
            price_completion_per_1k=price.completion,
            pricing_cost=call_cost(price, usage),
        )
    if record["reported_cost"] is not None:
        record.update(total_cost=record["reported_cost"], cost_source="reported")
    elif record["pricing_cost"] is not None:
        record.update(total_cost=record["pricing_cost"], cost_source="pricing")


def without_content(record: dict) -> dict:
    """The record with the prompt and reply texts left out."""
    return {**record, **dict.fromkeys(CONTENT_FIELDS)}


def record_json(record: dict, ensure_ascii: bool = False) -> str:
    """Encode a record as one line of JSON, with amounts in plain notation.

    >>> record_json({"total_cost": Decimal("1.35E-6"), "prompt": "héllo"})
    '{"total_cost": 0.00000135, "prompt": "héllo"}'
    """
    fields = (
        f"{json.dumps(key)}: "
        + (
            plain(value)
            if isinstance(value, Decimal)
            else json.dumps(value, ensure_ascii=ensure_ascii)
        )
        for key, value in record.items()
    )
    return "{" + ", ".join(fields) + "}"


def csv_cell(value: object) -> str:
    """Write one CSV cell, defusing text that a spreadsheet would run.

    >>> [csv_cell(v) for v in ("=SUM(A1)", "plain", None, True, Decimal("1E-7"))]
    ["'=SUM(A1)", 'plain', '', 'true', '0.0000001']
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, str):
        return "'" + value if value.startswith(CSV_FORMULA_TRIGGERS) else value
    return str(value)


def parse_csv_cell(field: str, cell: str) -> object:
    """Read one CSV cell back into the value the record held.

    >>> parse_csv_cell("prompt", "'=SUM(A1)"), parse_csv_cell("total_cost", "0.1")
    ('=SUM(A1)', Decimal('0.1'))
    """
    if cell == "":
        return None
    if field in INT_FIELDS:
        return int(cell)
    if field in DECIMAL_FIELDS:
        return Decimal(cell)
    if field in BOOL_FIELDS:
        return cell == "true"
    return cell[1:] if cell.startswith("'") else cell


# ---------------------------------------------------------------------------
# Log files


class LogFile:
    """An append-only log of call records, as JSONL or CSV.

    Every append starts on a new line, even after a record that a crash cut
    short. A CSV file gets its header exactly once, and appends follow the
    header already in the file.
    """

    def __init__(self, path: str, log_format: str) -> None:
        self.path = path
        self.format = log_format

    def check_writable(self) -> None:
        """Create the log's folder and file, or raise ConfigError.

        Run before any call, so that no money is spent on a call that cannot
        be logged.
        """
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            with open(self.path, "a+b") as f:
                if self.format == "csv":
                    self._csv_header(f)
        except OSError as exc:
            raise ConfigError(
                f"cannot write the log file {self.path}: {exc.strerror};"
                " choose another with --log-file"
            ) from None

    def append(self, record: dict) -> None:
        """Append one record, or raise TrackUsageError showing the record."""
        try:
            with open(self.path, "a+b") as f:
                f.write(self._tail_repair(f) + self._encode(record, f))
        except OSError as exc:
            raise TrackUsageError(
                f"could not append to {self.path} ({exc.strerror}); the record"
                f" was: {record_json(without_content(record))}"
            ) from None

    def _encode(self, record: dict, f: BinaryIO) -> bytes:
        if self.format == "jsonl":
            try:
                return record_json(record).encode() + b"\n"
            except UnicodeEncodeError:  # a lone surrogate: only \u escapes keep it
                return record_json(record, ensure_ascii=True).encode() + b"\n"
        header = self._csv_header(f)
        rows = [] if header else [LOG_FIELDS]
        rows.append([csv_cell(record.get(name)) for name in header or LOG_FIELDS])
        return csv_bytes(rows)

    def _csv_header(self, f: BinaryIO) -> list[str] | None:
        """The header of the CSV file (its first non-blank line), or None."""
        import csv

        f.seek(0)
        for line in f:
            if line.strip():
                header = next(csv.reader([line.decode("utf-8", "replace")]))
                break
        else:
            return None
        if not set(header) & set(LOG_FIELDS):
            raise ConfigError(
                f"{self.path} is not a track_usage CSV log (its header is"
                f" {','.join(header)[:60]!r}); choose another --log-file"
            )
        return header

    def _tail_repair(self, f: BinaryIO) -> bytes:
        """What to write first so that the next record starts on its own line."""
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return b""
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return b""
        # A record was cut short. In a CSV file it may have stopped inside a
        # quoted cell: an odd number of quotes in the file means it did.
        f.seek(0)
        quotes = sum(block.count(b'"') for block in iter(lambda: f.read(1 << 20), b""))
        return b'"\n' if self.format == "csv" and quotes % 2 else b"\n"


def csv_bytes(rows: list) -> bytes:
    """Encode rows as CSV lines in UTF-8."""
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8", "replace")


# ---------------------------------------------------------------------------
# Sending prompts


class Settings:
    """Everything a run needs, resolved from the command line and environment."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.model: str = args.model or os.environ.get(ENV_MODEL) or DEFAULT_MODEL
        self.max_tokens: int = args.max_tokens
        self.system: str | None = args.system
        self.timeout_s: float = args.timeout
        self.no_content: bool = args.no_content
        self.json_out: bool = args.json
        self.pricing_path: str = args.pricing
        self.base_url = os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
        self.log_path, self.log_format = resolve_log(args.log_file, args.log_format)


def resolve_log(log_file: str | None, log_format: str | None) -> tuple[str, str]:
    """Choose the log file and format from the options, environment and defaults.

    >>> resolve_log("usage.csv", None)
    ('usage.csv', 'csv')
    """
    path = log_file or os.environ.get(ENV_LOG_FILE)
    suffix = os.path.splitext(path)[1].lstrip(".").lower() if path else ""
    if log_format and suffix in LOG_FORMATS and suffix != log_format:
        raise ConfigError(
            f"--log-format {log_format} does not match the log file {path};"
            f" use a .{log_format} file name"
        )
    log_format = log_format or (suffix if suffix in LOG_FORMATS else "jsonl")
    return path or f"{DEFAULT_LOG_STEM}.{log_format}", log_format


def read_prompts(prompt: str | None) -> list[str]:
    """The prompt given, or the non-blank lines of stdin when it is None or -."""
    if prompt not in (None, "-"):
        if not prompt.strip():
            raise ConfigError("the prompt is empty; pass some text, or - for stdin")
        return [prompt]
    if sys.stdin is None:
        raise ConfigError("no prompt given and no stdin to read prompts from")
    if sys.stdin.isatty():
        print(
            "Reading prompts from stdin, one per line (Ctrl-D ends)...", file=sys.stderr
        )
    return split_prompts(sys.stdin.buffer.read())


def split_prompts(data: bytes) -> list[str]:
    """Split UTF-8 input into prompts, one per non-blank line.

    >>> split_prompts(b"first\\r\\n\\r\\n  \\nsecond\\n")
    ['first', 'second']
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"stdin is not UTF-8 text (line {line}, byte {exc.start + 1});"
            " convert it first, e.g. with iconv -t UTF-8"
        ) from None
    lines = (line.removesuffix("\r") for line in text.split("\n"))
    prompts = [line for line in lines if line.strip()]
    if not prompts:
        raise ConfigError("no prompts on stdin: give one per line, or pass a prompt")
    return prompts


def load_api_key() -> str:
    """Read OPENROUTER_API_KEY (the environment wins over .env), or raise."""
    key = os.environ.get(ENV_API_KEY, "").strip()
    if not key:
        raise ConfigError(
            f"{ENV_API_KEY} is not set: export it, or copy .env.example to .env"
            " and put your key there"
        )
    if not key.isascii() or not key.isprintable() or " " in key:
        raise ConfigError(
            f"{ENV_API_KEY} holds spaces or unusual characters; check its value"
        )
    _SECRETS.append(key)
    return key


def load_dotenv_file() -> None:
    """Load a .env file found from the current folder upwards, if any."""
    from dotenv import find_dotenv, load_dotenv

    load_dotenv(find_dotenv(usecwd=True), override=False)


def usage_line(record: dict) -> str:
    """The one-line summary of a call for stderr.

    >>> usage_line({"prompt_tokens": 15, "completion_tokens": 150,
    ...             "total_cost": Decimal("0.0002325"), "cost_source": "pricing",
    ...             "token_source": "api"})
    'Input tokens: 15, Output tokens: 150, Cost: $0.000233 (from pricing.json)'
    """
    counts = (
        f"Input tokens: {record['prompt_tokens']:,},"
        f" Output tokens: {record['completion_tokens']:,}"
    )
    if record["total_cost"] is None:
        return f"{counts}, Cost: unknown"
    source = {"reported": "billed by OpenRouter", "pricing": "from pricing.json"}
    note = source[record["cost_source"]]
    if record["token_source"] == "estimate":
        note += ", estimated tokens"
    return f"{counts}, Cost: {money(record['total_cost'])} ({note})"


def send_one(
    prompt: str,
    settings: Settings,
    client: OpenRouterClient,
    tokenizers: Tokenizers,
    prices: dict[str, Price],
    sent: threading.Event,
) -> dict:
    """Send one prompt and return its log record, status ok or error."""
    import time

    messages = build_messages(prompt, settings.system)
    payload = {
        "model": settings.model,
        "messages": messages,
        "max_tokens": settings.max_tokens,
        "usage": {"include": True},
    }
    record = new_record(utc_now(), settings.model, messages)
    started_s = time.perf_counter()
    try:
        reply = client.chat(payload, sent)
    except ApiError as exc:
        reply = None
        record.update(status="error", error=str(exc))
    record["latency_ms"] = round((time.perf_counter() - started_s) * 1000)
    if reply is not None:
        record["response"] = reply.text
    add_estimates(record, tokenizers.counter(settings.model), messages)
    if reply is not None:
        add_reply(record, reply, prices)
    return record


def show_result(record: dict, settings: Settings) -> None:
    """Print a call's reply on stdout and its usage or error on stderr."""
    shown = without_content(record) if settings.no_content else record
    if settings.json_out:
        print(record_json(shown), flush=True)
    elif record["status"] == "ok":
        print(record["response"] or "", flush=True)
    if record["status"] != "ok":
        error(record["error"])
        return
    if not settings.json_out:
        print(usage_line(record), file=sys.stderr, flush=True)
    if record["total_cost"] is None:
        warn(
            no_price_message(
                record["model_used"] or record["model"], settings.pricing_path
            )
        )


def cmd_send(args: argparse.Namespace) -> int:
    """Send each prompt, log it, and show the reply and its cost."""
    import threading

    load_dotenv_file()
    settings = Settings(args)
    prompts = read_prompts(args.prompt)
    prices = load_pricing(settings.pricing_path)
    if args.dry_run:
        return dry_run(prompts, settings, prices)
    client = OpenRouterClient(settings.base_url, load_api_key(), settings.timeout_s)
    log = LogFile(settings.log_path, settings.log_format)
    log.check_writable()
    sent = threading.Event()
    tokenizers = Tokenizers(start_after=sent)
    tokenizers.prefetch(settings.model)
    failed = 0
    for prompt in prompts:
        record = send_one(prompt, settings, client, tokenizers, prices, sent)
        log.append(without_content(record) if settings.no_content else record)
        show_result(record, settings)
        failed += record["status"] != "ok"
    return EXIT_CALL_FAILED if failed else EXIT_OK


def dry_run(prompts: list[str], settings: Settings, prices: dict[str, Price]) -> int:
    """Count and price each prompt without sending anything."""
    counter = Tokenizers().counter(settings.model)
    price = find_price(prices, settings.model)
    if price is None:
        warn(no_price_message(settings.model, settings.pricing_path))
    for prompt in prompts:
        estimate = counter.count_chat(build_messages(prompt, settings.system))
        low = high = None
        if price is not None:
            low = call_cost(price, Usage(estimate, 0))
            high = call_cost(price, Usage(estimate, settings.max_tokens))
        result = {
            "model": settings.model,
            "prompt_tokens_estimated": estimate,
            "tokenizer": counter.tokenizer,
            "tokenizer_approx": counter.approx,
            "max_tokens": settings.max_tokens,
            "pricing_model": price.model if price else None,
            "estimated_cost_min": low,
            "estimated_cost_max": high,
        }
        print(record_json(result) if settings.json_out else dry_run_line(result))
    return EXIT_OK


def dry_run_line(result: dict) -> str:
    """Describe a dry run's estimate in one line."""
    approx = "~" if result["tokenizer_approx"] else ""
    tokens = (
        f"{result['model']}: {approx}{result['prompt_tokens_estimated']:,} prompt"
        f" tokens ({result['tokenizer']}{', approximate' if approx else ''})"
    )
    if result["estimated_cost_min"] is None:
        return f"{tokens}; cost unknown (no price)"
    return (
        f"{tokens}; cost {money(result['estimated_cost_min'])} (prompt only)"
        f" .. {money(result['estimated_cost_max'])}"
        f" (with {result['max_tokens']:,} output tokens)"
    )


# ---------------------------------------------------------------------------
# Command line


def positive_int(text: str) -> int:
    """Parse a whole number greater than zero (for argparse)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(
            f"expected a whole number above 0, got {text!r}"
        )
    return int(text)


def positive_float(text: str) -> float:
    """Parse a number of seconds greater than zero (for argparse)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's layout, sized without importing shutil (a few ms at start)."""

    def __init__(self, prog: str) -> None:
        try:
            width = int(os.environ.get("COLUMNS", "")) or os.get_terminal_size().columns
        except (ValueError, OSError):
            width = 80
        super().__init__(prog, width=max(40, width - 2))


def build_parser() -> argparse.ArgumentParser:
    """The command line: a prompt (or stdin) and the options of a run."""
    parser = argparse.ArgumentParser(
        prog="track_usage.py",
        description="Send prompts through OpenRouter; log the tokens and cost.",
        epilog=EXIT_CODES_HELP,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "prompt",
        nargs="?",
        help="the prompt to send; without it (or with -) prompts are read"
        " from stdin, one per non-blank line",
    )
    parser.add_argument(
        "-m",
        "--model",
        metavar="MODEL",
        help=f"OpenRouter model id (default: ${ENV_MODEL}, else {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--max-tokens",
        type=positive_int,
        default=DEFAULT_MAX_TOKENS,
        metavar="N",
        help="most output tokens per call, always sent: OpenRouter reserves credit"
        f" for all of them (default: {DEFAULT_MAX_TOKENS})",
    )
    parser.add_argument(
        "--system", metavar="TEXT", help="a system message to send first"
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"give up on a call after this long (default: {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--no-content",
        action="store_true",
        help="log everything except the prompt, system and reply texts",
    )
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help="jsonl or csv (default: from the log file's extension, else jsonl)",
    )
    parser.add_argument(
        "--log-file",
        metavar="PATH",
        help=f"the log to append to (default: ${ENV_LOG_FILE}, else"
        " logs/token_usage.jsonl or .csv beside this script)",
    )
    parser.add_argument(
        "--pricing",
        metavar="PATH",
        default=DEFAULT_PRICING_PATH,
        help="the price table (default: pricing.json beside this script)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="count and price the prompts; send and log nothing, need no key",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per prompt on stdout and nothing else",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return the exit code."""
    for stream in (sys.stdout, sys.stderr):
        # A reply may hold characters the terminal cannot show: never crash on it.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    args = build_parser().parse_args(argv)
    try:
        return cmd_send(args)
    except TrackUsageError as exc:
        error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        print(file=sys.stderr)
        error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout was closed early (e.g. piped into head): nothing left to say.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return EXIT_CALL_FAILED
    except Exception as exc:
        if os.environ.get(ENV_DEBUG):
            raise
        error(
            f"internal error: {type(exc).__name__}: {exc}"
            f" (set {ENV_DEBUG}=1 to see a traceback)"
        )
        return EXIT_CALL_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
