#!/usr/bin/env python3
"""Send prompts through OpenRouter and keep an exact log of tokens and cost.

    python track_usage.py "Explain quantum computing in simple terms."
    python track_usage.py "Summarise this" -m anthropic/claude-haiku-4.5 \
        --log-format csv
    python track_usage.py -i prompts.txt --concurrency 8 --daily-budget 2
    python track_usage.py "Hi" --dry-run         # count and price, send nothing
    python track_usage.py budget                 # today's spend against the budget

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
    from collections.abc import Callable, Iterable, Iterator
    from datetime import date, datetime, tzinfo
    from typing import BinaryIO, NoReturn

    import requests
    import tiktoken

EXIT_OK = 0
EXIT_CALL_FAILED = 1
EXIT_USAGE = 2
EXIT_BUDGET = 3
EXIT_INTERRUPTED = 130

DEFAULT_MODEL = "openai/gpt-4o-mini"
DEFAULT_MAX_TOKENS = 1024
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_CONCURRENCY = 4
DEFAULT_RETRIES = 3
DEFAULT_BUDGET_ALERT_PCT = 80
# Upper bounds of numeric options: beyond them a value is a typo.
MAX_ARG_NUMBER = 10_000_000
MAX_TIMEOUT_S = 86_400
DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
APP_TITLE = "track_usage.py"

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PRICING_PATH = os.path.join(SCRIPT_DIR, "pricing.json")
DEFAULT_LOG_STEM = os.path.join(SCRIPT_DIR, "logs", "token_usage")
LOG_FORMATS = ("jsonl", "csv")

ENV_API_KEY = "OPENROUTER_API_KEY"
PLACEHOLDER_KEY = "sk-or-v1-your-key-here"  # as in .env.example
ENV_BASE_URL = "OPENROUTER_BASE_URL"
ENV_MODEL = "OPENROUTER_MODEL"
ENV_LOG_FILE = "TRACK_USAGE_LOG_FILE"
ENV_DAILY_BUDGET = "DAILY_BUDGET_USD"
ENV_TIMEZONE = "TRACK_USAGE_TZ"
ENV_DEBUG = "TRACK_USAGE_DEBUG"

PRICING_UNIT = "USD per 1K tokens"
# Bounds that tell data from garbage: anything outside is refused, never
# booked, so that cost arithmetic stays exact and small.
MAX_PLAUSIBLE_USD = Decimal(1_000_000)
MIN_PRICE_EXPONENT = -30
MAX_PRICE_DIGITS = 30
MAX_PLAUSIBLE_TOKENS = 10**12
PRICE_KEYS = ("prompt", "completion", "cached_prompt", "cache_write", "request")
REQUIRED_PRICE_KEYS = ("prompt", "completion")
# Suffixes that choose how OpenRouter routes a call, not what it costs.
ROUTING_VARIANTS = ("nitro", "floor", "exacto")
# Ids that choose a model per call: priced by the model that served.
ROUTERS = ("openrouter/auto",)

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

# Retries: exponential backoff with jitter from this base, each wait (also one
# asked for by Retry-After) capped.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 524, 529})
RETRY_BASE_S = 0.5
RETRY_WAIT_MAX_S = 60.0
# Errors after which every later call would fail the same way.
BATCH_STOPPING_STATUSES = frozenset({401, 402})
DAILY_QUOTA_PATTERN = r"per[- _]?day|daily"

# The daily budget reserves each call's worst case before sending it. Counts
# made with a stand-in tokenizer get this margin, for the model's own
# tokenizer and chat template.
APPROX_PROMPT_MARGIN = Decimal("1.3")
APPROX_PROMPT_EXTRA_TOKENS = 32
# Spend is indexed in 15-minute buckets (every time zone's midnight falls on
# one) for the last BUCKET_WINDOW_S seconds, enough for "today" anywhere.
BUCKET_S = 900
BUCKET_WINDOW_S = 50 * 3600
BUDGET_POLL_S = 0.1

SCHEMA_VERSION = 2
# Fields new in each schema version: a log written by an earlier version has
# none of them, and readers treat them as unknown.
SCHEMA_ADDITIONS = {2: ("input_line", "input_id", "attempts", "prompt_hash")}
LOG_FIELDS = (
    "schema_version",
    "timestamp",
    "request_id",
    "input_line",
    "input_id",
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
    "attempts",
    "finish_reason",
    "prompt_hash",
)
CONTENT_FIELDS = ("system", "prompt", "response")
# Valid inside JSON strings, but line breaks to many line-splitting readers.
UNICODE_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}
INT_FIELDS = frozenset(
    {"schema_version", "latency_ms", "input_line", "attempts"}
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
subcommands (each has its own --help):
  budget                today's spend against the daily budget

  A prompt that is a subcommand's name is sent with --: track_usage.py -- budget

exit codes:
  0    every call succeeded (a dry run: every prompt was counted)
  1    a call failed (its error record is in the log), or an internal error
  2    bad command line, input or configuration: missing API key, unreadable
       or malformed pricing file, empty prompt, stdin that is not UTF-8
  3    the daily budget refused a call
  130  interrupted (Ctrl-C)

environment:
  OPENROUTER_API_KEY    the API key (also read from a .env file found from
                        the current folder upwards; see .env.example)
  OPENROUTER_BASE_URL   the API address (default https://openrouter.ai/api/v1)
  OPENROUTER_MODEL      the default model
  TRACK_USAGE_LOG_FILE  the default log file
  DAILY_BUDGET_USD      the default --daily-budget
  TRACK_USAGE_TZ        the default --timezone
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
    """A call to OpenRouter failed (exit code 1).

    `retryable` says whether the same request may succeed later, after
    `retry_after_s` when the server said; `partial` holds what a stream sent
    before it failed.
    """

    exit_code = EXIT_CALL_FAILED

    def __init__(
        self,
        message: str,
        status: int | None = None,
        *,
        retryable: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(redact(message))  # servers may echo the key back
        self.status = status
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.partial: Reply | None = None
        self.attempts = 1

    @property
    def stops_batch(self) -> bool:
        """True when every later call would fail the same way."""
        import re

        if self.status in BATCH_STOPPING_STATUSES:
            return True
        return self.status == 429 and bool(
            re.search(DAILY_QUOTA_PATTERN, str(self), re.IGNORECASE)
        )


class LogWriteError(TrackUsageError):
    """A record could not be appended to the log (exit code 1)."""

    exit_code = EXIT_CALL_FAILED


class BudgetRefused(TrackUsageError):
    """The daily budget has no room for a call (exit code 3)."""

    exit_code = EXIT_BUDGET


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
    import decimal

    wide = decimal.Context(prec=100, rounding=decimal.ROUND_HALF_UP)
    return "$" + str(value.quantize(Decimal(1).scaleb(-places), context=wide))


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


def load_pricing(path: str, required: bool = True) -> dict[str, Price]:
    """Read pricing.json into a table of prices keyed by model id.

    Numbers are read as exact decimals. Raises ConfigError naming the file, the
    model and the problem when the file is malformed, or missing while
    `required`; a missing optional file gives an empty table and a warning.
    """
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) and not required:
            warn(
                f"no price table at {path}: costs come only from OpenRouter's own"
                " figures, and are unknown (null) when a response has none"
            )
            return {}
        raise ConfigError(
            f"cannot read pricing file {path}: {exc.strerror or exc};"
            " pass --pricing PATH to use another file"
        ) from None
    try:
        data = json.loads(
            text,
            parse_float=Decimal,
            parse_int=Decimal,
            parse_constant=_refuse_constant,
            object_pairs_hook=_refuse_duplicates,
        )
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path} is nested too deeply to be a price table") from None
    return parse_pricing(data, path)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a price")


def _refuse_duplicates(pairs: list[tuple[str, object]]) -> dict:
    result = dict(pairs)
    if len(result) < len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f'"{twice}" appears twice in one object')
    return result


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
        if (
            not is_plausible_usd(value)
            or len(value.as_tuple().digits) > MAX_PRICE_DIGITS
        ):
            raise ConfigError(f'{where}: "{key}" is not a plausible price ({value})')
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


def pricing_id(model: str) -> str:
    """Reduce a model id to what sets its price: no date, no routing variant.

    >>> pricing_id("openai/gpt-4o-2024-08-06:nitro"), pricing_id("x/y-20260403:free")
    ('openai/gpt-4o', 'x/y:free')
    """
    name, _, variant = strip_date(model).partition(":")
    return name if variant in ROUTING_VARIANTS or not variant else f"{name}:{variant}"


def find_price(
    table: dict[str, Price], requested: str, served: str | None = None
) -> Price | None:
    """Find the price of a call: by the model that served it, else the one asked.

    Date suffixes and routing variants (:nitro, :floor) are ignored; the
    requested id is used only when the served model is the same model at the
    same price class: a fallback to another model, or a paid model serving a
    :free request, is priced as what served or not at all. A :free id that
    served costs 0. Returns None when nothing matches.

    >>> table = {"openai/gpt-4o": Price("openai/gpt-4o", prompt=1, completion=2)}
    >>> find_price(table, "openai/gpt-4o:nitro", "openai/gpt-4o-2024-08-06").model
    'openai/gpt-4o'
    >>> print(find_price(table, "openai/gpt-4o", "anthropic/claude-haiku-4.5"))
    None
    """
    served = served or requested
    candidates = [served, strip_date(served), pricing_id(served)]
    if pricing_id(served) == pricing_id(requested):
        candidates += [requested, pricing_id(requested)]
    for model in candidates:
        if model in table:
            return table[model]
    if pricing_id(served).endswith(":free"):
        return Price(served, prompt=Decimal(0), completion=Decimal(0))
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
            result["error"] = connection_problem(exc)
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
        choices = body.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else {}
        choice = choice if _is_dict(choice) else {}
        message = choice.get("message") if _is_dict(choice.get("message")) else {}
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        content = message.get("content")
        self.text: str | None = content if isinstance(content, str) else None
        self.model_used: str | None = _str_or_none(body.get("model"))
        self.provider: str | None = _str_or_none(body.get("provider"))
        self.request_id: str | None = _str_or_none(body.get("id")) or generation_id
        self.finish_reason: str | None = _str_or_none(choice.get("finish_reason"))
        self.usage = parse_usage(usage)
        byok = usage.get("is_byok")
        self.is_byok: bool | None = byok if isinstance(byok, bool) else None
        self.reported_cost = reported_cost(usage)
        self.attempts = 1


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
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    prompt_details = prompt_details if _is_dict(prompt_details) else {}
    completion_details = completion_details if _is_dict(completion_details) else {}
    return Usage(
        prompt,
        completion,
        _count_or_zero(prompt_details.get("cached_tokens")),
        _count_or_zero(prompt_details.get("cache_write_tokens")),
        _count_or_zero(completion_details.get("reasoning_tokens")),
    )


def _is_count(value: object) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 0 <= value <= MAX_PLAUSIBLE_TOKENS
    )


def _is_dict(value: object) -> bool:
    return isinstance(value, dict)


def _count_or_zero(value: object) -> int:
    return value if _is_count(value) else 0  # type: ignore[return-value]


def is_plausible_usd(value: object) -> bool:
    """Tell a real amount of dollars from garbage: a number from 0 to a million.

    >>> [is_plausible_usd(v) for v in (Decimal("0.01"), 0, -5, Decimal("1e30"), True)]
    [True, True, False, False, False]
    """
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        return False
    amount = Decimal(value)
    if not amount.is_finite() or not 0 <= amount <= MAX_PLAUSIBLE_USD:
        return False
    return amount == 0 or amount.adjusted() >= MIN_PRICE_EXPONENT


def reported_cost(usage: dict) -> Decimal | None:
    """The dollars OpenRouter says it charged, or None when it did not say.

    A bring-your-own-key call reports only OpenRouter's fee in `cost`; the
    provider's charge is `cost_details.upstream_inference_cost`, so both count.

    >>> reported_cost({"cost": Decimal("0.001"), "is_byok": True,
    ...                "cost_details": {"upstream_inference_cost": Decimal("0.02")}})
    Decimal('0.021')
    """
    cost = usage.get("cost")
    if not is_plausible_usd(cost):
        return None
    if usage.get("is_byok") is True:
        details = usage.get("cost_details")
        upstream = details.get("upstream_inference_cost") if _is_dict(details) else None
        if not is_plausible_usd(upstream):
            return None
        return Decimal(cost) + Decimal(upstream)  # both have few digits: exact
    return Decimal(cost)


def error_in_body(body: object, http_status: int) -> ApiError | None:
    """Find the error in a response, including one sent with HTTP 200."""
    if not isinstance(body, dict):
        return ApiError(f"HTTP {http_status}: the response is not a JSON object")
    error = body.get("error")
    choices = body.get("choices")
    if not error and isinstance(choices, list) and choices:
        error = choices[0].get("error") if isinstance(choices[0], dict) else None
    if error:
        return api_error(error, http_status)
    if http_status >= 400:
        return api_error({"message": f"HTTP {http_status}"}, http_status)
    if not isinstance(choices, list) or not choices:
        return ApiError("the response holds neither choices nor an error")
    return None


def api_error(
    error: object, http_status: int, retry_after: str | None = None
) -> ApiError:
    """Turn OpenRouter's error object into an ApiError with a hint.

    The status is `code` when it is a number, else `http_status`, else the
    HTTP status of the response. `retry_after` is the Retry-After header.

    >>> str(api_error({"code": 402, "message": "Insufficient credits"}, 200))
    'OpenRouter error 402: Insufficient credits (add credits, or lower --max-tokens)'
    """
    if not isinstance(error, dict):
        error = {"message": str(error)}
    codes = (error.get("code"), error.get("http_status"))
    status = next((c for c in codes if _is_count(c) and 100 <= c < 600), http_status)
    message = one_line(str(error.get("message") or "no message"), 500)
    metadata = error.get("metadata") if _is_dict(error.get("metadata")) else {}
    if metadata.get("raw"):
        message += f" ({one_line(str(metadata['raw']), 200)})"
    hint = hint_for(status)
    availability = error.get("availability")
    if not isinstance(availability, dict):
        availability = {}
    if retry_after is None and _is_count(availability.get("retry_after")):
        retry_after = str(availability["retry_after"])
    problem = ApiError(
        f"OpenRouter error {status}: {message}{hint}",
        status,
        retryable=status in RETRYABLE_STATUSES
        and availability.get("retryable") is not False,
        retry_after_s=seconds_from_retry_after(retry_after),
    )
    problem.retryable = problem.retryable and not problem.stops_batch
    return problem


def one_line(text: str, limit: int) -> str:
    """Squeeze a server's text onto one line of at most `limit` characters.

    Secrets are removed first, so that cutting never leaves half a key behind.
    """
    return " ".join(redact(text[: limit * 4]).split())[:limit]


def seconds_from_retry_after(value: str | None) -> float | None:
    """Read a Retry-After value: seconds, or an HTTP date.

    >>> seconds_from_retry_after("2"), seconds_from_retry_after(None)
    (2.0, None)
    """
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, (parsedate_to_datetime(value) - utc_now()).total_seconds())
        except (TypeError, ValueError):
            return None


def hint_for(status: int, json_expected: bool = False) -> str:
    """What to do about an HTTP status, for the end of an error line."""
    if status >= 500:
        return ERROR_HINTS.get(status, ERROR_HINTS[500])
    if json_expected:
        return f" (is {ENV_BASE_URL} an OpenRouter-compatible API?)"
    return ERROR_HINTS.get(status, "")


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

    def chat(
        self,
        payload: dict,
        sent: threading.Event | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> Reply:
        """Send one chat completion and return its reply, or raise ApiError.

        `sent` is set once the request body has been handed to the socket.
        With `on_text` the reply is streamed, and each piece of text is passed
        to it as it arrives.
        """
        import requests

        url = f"{self.base_url}/chat/completions"
        payload = {**payload, "stream": True} if on_text else payload
        body = _BodyThatSignals(json.dumps(payload).encode(), sent)
        try:
            response = self._session().post(
                url,
                data=body,
                timeout=self.timeout_s,
                stream=on_text is not None,
                allow_redirects=False,  # a re-sent POST would have no body
            )
            if on_text is not None and response.status_code == 200:
                return read_stream(response.iter_lines(), on_text)
            return read_reply(response)
        except requests.Timeout:
            raise ApiError(
                f"no answer from {url} within {self.timeout_s:g} s"
                " (raise --timeout, or try again)",
                retryable=True,
            ) from None
        except requests.RequestException as exc:
            problem = connection_problem(exc)
            if "refused" in problem or "resolution" in problem:
                problem += f" (check {ENV_BASE_URL} and the network)"
                raise ApiError(
                    f"could not reach {url}: {problem}", retryable=True
                ) from None
            raise ApiError(f"no answer from {url}: {problem}", retryable=True) from None
        finally:
            if sent is not None:
                sent.set()

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
    """Decode a chat completion response, raising ApiError for any error.

    An error that comes with usage keeps it in `partial`: that call was billed.
    """
    status = response.status_code
    if 300 <= status < 400:
        raise ApiError(
            f"HTTP {status}: {response.url} redirects to"
            f" {response.headers.get('Location')}; set {ENV_BASE_URL} to the"
            " address it redirects to",
            status,
        )
    try:
        body = json.loads(response.content, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise ApiError(
            f"HTTP {status}: the response is not JSON:"
            f" {one_line(response.text, 100)!r}{hint_for(status, json_expected=True)}",
            status,
            retryable=status in RETRYABLE_STATUSES,
            retry_after_s=seconds_from_retry_after(response.headers.get("Retry-After")),
        ) from None
    if isinstance(body, dict) and body.get("error"):
        problem = api_error(body["error"], status, response.headers.get("Retry-After"))
    else:
        problem = error_in_body(body, status)
    reply = (
        Reply(body, response.headers.get("X-Generation-Id")) if _is_dict(body) else None
    )
    if problem is not None:
        problem.partial = reply if reply and reply.usage else None
        raise problem
    return reply  # type: ignore[return-value]


def read_stream(lines: Iterable[bytes], on_text: Callable[[str], None]) -> Reply:
    """Read a server-sent event stream of chat completion chunks into a Reply.

    Comment lines (": OPENROUTER PROCESSING") are skipped, and usage is taken
    from whichever chunk carries it. An error event, or a stream that stops
    before [DONE], raises ApiError with what arrived so far in `partial`.
    """
    import requests

    texts: list[str] = []
    body: dict = {"choices": [{"message": {"content": None}}]}
    try:
        for line in lines:
            if not line.startswith(b"data:"):
                continue  # a comment, a blank line or another SSE field
            data = line[5:].strip()
            if data == b"[DONE]":
                return stream_reply(body, texts)
            chunk = json.loads(data, parse_float=Decimal)
            if not isinstance(chunk, dict):
                continue
            problem = error_in_body(chunk, 200) if chunk.get("error") else None
            if problem is None and _is_error_choice(chunk):
                problem = error_in_body(chunk, 200)
            if problem is not None:
                problem.partial = stream_reply(body, texts)
                raise problem
            merge_chunk(body, chunk, texts, on_text)
    except (requests.RequestException, ValueError) as exc:
        problem = ApiError(f"the stream broke off: {connection_problem(exc)}")
        problem.partial = stream_reply(body, texts)
        raise problem from None
    problem = ApiError("the stream ended before it was complete")
    problem.partial = stream_reply(body, texts)
    raise problem


def _is_error_choice(chunk: dict) -> bool:
    choices = chunk.get("choices")
    return bool(
        isinstance(choices, list)
        and choices
        and isinstance(choices[0], dict)
        and choices[0].get("finish_reason") == "error"
        and choices[0].get("error")
    )


def merge_chunk(
    body: dict, chunk: dict, texts: list[str], on_text: Callable[[str], None]
) -> None:
    """Fold one stream chunk into the body of the reply being assembled."""
    for key in ("id", "model", "provider"):
        if chunk.get(key) is not None:
            body[key] = chunk[key]
    if isinstance(chunk.get("usage"), dict):
        body["usage"] = chunk["usage"]
    choices = chunk.get("choices")
    if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)):
        return
    delta = choices[0].get("delta") if isinstance(choices[0].get("delta"), dict) else {}
    text = delta.get("content")
    if isinstance(text, str) and text:
        texts.append(text)
        on_text(text)
    if choices[0].get("finish_reason"):
        body["choices"][0]["finish_reason"] = choices[0]["finish_reason"]


def stream_reply(body: dict, texts: list[str]) -> Reply:
    """The Reply assembled from the chunks read so far."""
    body["choices"][0]["message"]["content"] = "".join(texts) if texts else None
    return Reply(body)


def call_with_retries(
    call: Callable[[], Reply],
    retries: int,
    stop: threading.Event,
    on_retry: Callable[[int, ApiError, float], None],
) -> Reply:
    """Make a call, retrying what may succeed later, at most `retries` times.

    Waits grow exponentially with jitter, or follow Retry-After, capped at
    RETRY_WAIT_MAX_S. No retry starts once `stop` is set. A final failure is
    raised with the number of attempts in its `attempts`.
    """
    import random

    for attempt in range(1, retries + 2):
        try:
            reply = call()
            reply.attempts = attempt
            return reply
        except ApiError as exc:
            exc.attempts = attempt
            if not exc.retryable or attempt > retries or stop.is_set():
                raise
            wait_s = exc.retry_after_s
            if wait_s is None:
                wait_s = RETRY_BASE_S * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
            wait_s = min(wait_s, RETRY_WAIT_MAX_S)
            on_retry(attempt, exc, wait_s)
            if stop.wait(wait_s):
                raise
    raise AssertionError("unreachable")


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
    if "IncompleteRead" in text or "InvalidChunkLength" in text:
        return "the answer was cut off"
    if "decod" in text.lower():
        return "the answer could not be decoded (a broken compressed body?)"
    return one_line(f"{type(exc).__name__}: {text}", 200)


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


def new_record(job: Job, messages: list[dict], timestamp: datetime) -> dict:
    """Start a log record: every field present, unknown values None."""
    record = dict.fromkeys(LOG_FIELDS)
    system = [m["content"] for m in messages if m["role"] == "system"]
    record.update(
        schema_version=SCHEMA_VERSION,
        timestamp=timestamp.isoformat(timespec="milliseconds"),
        input_line=job.line,
        input_id=job.item_id,
        model=job.model,
        system=system[0] if system else None,
        prompt=job.prompt,
        prompt_hash=prompt_hash(messages),
    )
    return record


def prompt_hash(messages: list[dict[str, str]]) -> str:
    """Fingerprint what a call sent, so --resume can match it without the text.

    >>> prompt_hash([{"role": "user", "content": "Hi"}])[:16]
    'c78dd08d6154e3bc'
    """
    import hashlib

    text = json.dumps(messages, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode(errors="surrogatepass")).hexdigest()


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
    return ("{" + ", ".join(fields) + "}").translate(UNICODE_LINE_BREAKS)


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


class LogLock:
    """Mutual exclusion for one log, across threads and processes.

    A thread lock keeps this process's threads in line; a lock file (the
    filelock library: fcntl on Linux and macOS, msvcrt on Windows) does the
    same for other processes.
    """

    def __init__(self, path: str) -> None:
        import threading

        self.path = path
        self._thread_lock = threading.Lock()
        self._file_lock = None

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        try:
            if self._file_lock is None:
                from filelock import FileLock

                self._file_lock = FileLock(self.path, thread_local=False)
            self._file_lock.acquire()
        except BaseException:
            self._thread_lock.release()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self._file_lock.release()  # type: ignore[union-attr]
        self._thread_lock.release()


class LogFile:
    """An append-only log of call records, as JSONL or CSV, safe to share.

    Any number of threads and processes may append at once: each record is
    written whole, under the log's lock. Every append starts on a new line,
    even after a record that a crash cut short. A CSV file gets its header
    exactly once, and appends follow the header already in the file.
    """

    def __init__(self, path: str, log_format: str) -> None:
        self.path = path
        self.format = log_format
        self.lock = LogLock(path + ".lock")
        self._header_checked = False

    def check_writable(self) -> None:
        """Create the log's folder, file and lock, or raise ConfigError.

        Run before any call, so that no money is spent on a call that cannot
        be logged.
        """
        if os.path.exists(self.path) and not os.path.isfile(self.path):
            raise ConfigError(
                f"the log file {self.path} is not a regular file; choose another"
                " with --log-file"
            )
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            with self.lock, open(self.path, "a+b") as f:
                if self.format == "csv":
                    self._csv_header(f)
        except OSError as exc:
            raise ConfigError(
                f"cannot write the log file {self.path}: {exc.strerror or exc};"
                " choose another with --log-file"
            ) from None

    def append(self, record: dict) -> None:
        """Append one record under the lock."""
        with self.lock:
            self.append_locked(record)

    def append_locked(self, record: dict) -> None:
        """Append one record; the caller holds the lock.

        A write that fails half-way (a full disk) is taken back, so that no
        partial record is left behind; LogWriteError then shows the record.
        """
        import contextlib

        with open(self.path, "a+b", buffering=0) as f:
            size = f.seek(0, os.SEEK_END)
            try:
                data = memoryview(self._tail_repair(f) + self._encode(record, f))
                while data:
                    data = data[f.write(data) :]
            except OSError as exc:
                with contextlib.suppress(OSError):
                    f.truncate(size)
                raise LogWriteError(
                    f"could not append to {self.path} ({exc.strerror or exc}); the"
                    f" record was: {record_json(without_content(record))}"
                ) from None

    def repair_tail_locked(self) -> None:
        """End a record that a crash cut short, so that readers see whole lines."""
        try:
            with open(self.path, "a+b") as f:
                f.write(self._tail_repair(f))
        except FileNotFoundError:
            pass

    def read(self, offset: int = 0, line: int = 1, since: str = "") -> LogReader:
        """Records from byte `offset` (which is line `line`) to the end.

        With `since` (an ISO timestamp in UTC), JSONL records that plainly
        started earlier are skipped unread.
        """
        return LogReader(self, offset, line, since)

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
        header = read_csv_header(f)
        if header is None or self._header_checked:
            return header
        if header[:1] != ["schema_version"] or not set(header) <= set(LOG_FIELDS):
            raise ConfigError(
                f"{self.path} is not a track_usage CSV log (its header is"
                f" {','.join(header)[:60]!r}); choose another --log-file"
            )
        missing = [name for name in LOG_FIELDS if name not in header]
        if missing:
            warn(
                f"{self.path} was started by an earlier version and has no column"
                f" for {', '.join(missing)}; those fields are left out of it"
                " (start a new CSV file to keep them)"
            )
        self._header_checked = True
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


def read_csv_header(f: BinaryIO) -> list[str] | None:
    """Read a CSV file's first non-blank line as its header, or None."""
    import csv

    f.seek(0)
    for line in iter(f.readline, b""):
        if line.strip():  # a spreadsheet may have added a byte order mark
            return next(csv.reader([line.decode("utf-8-sig", "replace")]))
    return None


def csv_bytes(rows: list) -> bytes:
    """Encode rows as CSV lines in UTF-8."""
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8", "replace")


class LogReader:
    """Iterates over a log's records, skipping corrupt lines with a warning.

    Yields (line number, record). Records written by earlier versions lack the
    newer fields; read them with .get(). Once exhausted, `offset` and `line`
    say where the next read should start.
    """

    def __init__(self, log: LogFile, offset: int, line: int, since: str) -> None:
        self.log = log
        self.offset = offset
        self.line = line
        self._since = since.encode()

    def __iter__(self) -> Iterator[tuple[int, dict]]:
        if not os.path.exists(self.log.path):
            return iter(())
        if self.log.format == "csv":
            return self._csv()
        return self._jsonl()

    def _jsonl(self) -> Iterator[tuple[int, dict]]:
        with open(self.log.path, "rb") as f:
            f.seek(self.offset)
            for raw in f:
                number, self.line = self.line, self.line + 1
                if not raw.strip() or self._plainly_before_since(raw):
                    continue
                try:
                    record = json.loads(raw, parse_float=Decimal)
                except ValueError:
                    record = None
                if isinstance(record, dict):
                    yield number, record
                else:
                    self._corrupt(number)
            self.offset = f.tell()

    def _plainly_before_since(self, raw: bytes) -> bool:
        """Cheaply tell a record written by this tool that started too early."""
        start = raw.find(b'"timestamp": "', 0, 80) + 14
        stamp = raw[start : start + 29]
        return start > 13 and stamp.endswith(b"+00:00") and stamp < self._since

    def _csv(self) -> Iterator[tuple[int, dict]]:
        import csv
        import io

        with open(self.log.path, "rb") as f:
            header = read_csv_header(f)
            if header is None:
                return
            header_end = f.tell()
            if self.offset < header_end:  # start with the first row
                f.seek(0)
                self.line = f.read(header_end).count(b"\n") + 1
                self.offset = header_end
            f.seek(self.offset)
            text = io.TextIOWrapper(f, encoding="utf-8", errors="replace", newline="")
            rows = csv.reader(text)
            first_line, consumed = self.line, 0
            for row in rows:
                number, consumed = first_line + consumed, rows.line_num
                if row:
                    record = parse_csv_row(header, row)
                    if record is None:
                        self._corrupt(number)
                    else:
                        yield number, record
            self.line = first_line + consumed
            self.offset = f.seek(0, os.SEEK_END)

    def _corrupt(self, number: int) -> None:
        warn(
            f"{self.log.path} line {number} is not a whole record (cut short by"
            " a crash, or edited?); skipped"
        )


def parse_csv_row(header: list[str], row: list[str]) -> dict | None:
    """Turn a CSV row into a record, or None when it does not fit the header."""
    if len(row) != len(header):
        return None
    try:
        cells = zip(header, row, strict=True)
        return {name: parse_csv_cell(name, cell) for name, cell in cells}
    except (ValueError, ArithmeticError):  # decimal.InvalidOperation is both
        return None


# ---------------------------------------------------------------------------
# The daily budget


def day_window(now: datetime, zone: tzinfo | None) -> tuple[date, datetime, datetime]:
    """The calendar day `now` falls in, in a zone (None: the system's local time).

    Returns the day and the moments it starts and ends, DST included.

    >>> from datetime import datetime, timezone
    >>> from zoneinfo import ZoneInfo
    >>> now = datetime(2026, 3, 8, 4, 30, tzinfo=timezone.utc)
    >>> day, start, end = day_window(now, ZoneInfo("America/New_York"))
    >>> str(day), start.isoformat(), end.isoformat()
    ('2026-03-07', '2026-03-07T00:00:00-05:00', '2026-03-08T00:00:00-05:00')
    """
    from datetime import datetime, time, timedelta

    def midnight(day: date) -> datetime:
        if zone is None:
            return datetime.combine(day, time()).astimezone()
        return datetime.combine(day, time(), zone)

    day = now.astimezone(zone).date()
    return day, midnight(day), midnight(day + timedelta(days=1))


def load_zone(name: str | None) -> tzinfo | None:
    """Look up an IANA time zone; None or "" means the system's local time."""
    if not name:
        return None
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(name)
    # ZoneInfoNotFoundError is a KeyError; a malformed name is a ValueError.
    except (KeyError, ValueError, OSError):
        raise ConfigError(
            f'unknown time zone "{name}": use an IANA name such as Europe/Berlin'
            " (on Windows, pip install tzdata first)"
        ) from None


def zone_name(zone: tzinfo | None) -> str:
    """Name a zone for people: its IANA key, or "local (CET)"."""
    if zone is not None:
        return str(zone)
    from datetime import datetime

    return f"local ({datetime.now().astimezone().tzname()})"


class DaySpend:
    """What a day's log says: money booked, calls made, calls with no price."""

    def __init__(self, day: date, spent: Decimal, calls: int, unpriced: int) -> None:
        self.day = day
        self.spent = spent
        self.calls = calls
        self.unpriced = unpriced


class Budget:
    """A daily spending limit that holds across threads and processes.

    Before a call, reserve() sets aside its worst case; after it, settle()
    appends the call's record and releases the reservation, both under the
    log's lock, so that N parallel calls, or N processes sharing the log,
    cannot push the day over the limit when calls cost no more than their
    reservation.

    Today's spend comes from the log: a small state file beside it
    (<log>.budget.json) holds how far the log has been read and the spend in
    15-minute buckets of the last two days, so each check reads only what
    was appended since. Reservations are kept there too, each tagged with the
    process that made it; a process holds a lock file of its own while it
    lives, so the reservations of one that died are dropped.
    """

    def __init__(
        self,
        log: LogFile,
        limit: Decimal | None,
        zone: tzinfo | None,
        alert_pct: Decimal = Decimal(DEFAULT_BUDGET_ALERT_PCT),
    ) -> None:
        import itertools
        import secrets

        self.log = log
        self.limit = limit
        self.zone = zone
        self.alert_at = None if limit is None else limit * alert_pct / 100
        self.state_path = log.path + ".budget.json"
        self.owner = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.overshoot = Decimal(0)
        self._owner_lock = None
        self._mine: dict[str, Decimal] = {}
        self._numbers = itertools.count(1)

    def today(self) -> tuple[DaySpend, Decimal]:
        """Today's spend and what is reserved for calls in flight."""
        if not os.path.exists(self.log.path):
            day = day_window(utc_now(), self.zone)[0]
            return DaySpend(day, Decimal(0), 0, 0), Decimal(0)
        with self.log.lock:
            state = self._caught_up_state()
            self._save(state)
        return self._spend(state), self._reserved(state)

    def reserve(self, need: Decimal, what: str, stop: threading.Event) -> str:
        """Set aside `need` dollars for a call, or raise BudgetRefused.

        When the call would fit once the calls in flight settle, waits for
        them rather than refusing.
        """
        assert self.limit is not None
        while True:
            with self.log.lock:
                state = self._caught_up_state()
                self._drop_dead_owners(state)
                spend = self._spend(state)
                if spend.spent + self._reserved(state) + need <= self.limit:
                    reservation = self._add_reservation(state, need)
                    self._save(state)
                    return reservation
                self._save(state)
            if spend.spent + need > self.limit or stop.is_set():
                raise BudgetRefused(self._refusal(spend, need, what))
            stop.wait(BUDGET_POLL_S)

    def settle(self, reservation: str | None, record: dict) -> None:
        """Append a call's record and release its reservation, in one step."""
        with self.log.lock:
            state = self._caught_up_state()
            before = self._spend(state).spent
            self.log.append_locked(record)
            self._catch_up(state)
            after = self._spend(state).spent
            state["reservations"].pop(reservation, None)
            self._save(state)
        reserved = self._mine.pop(reservation, None) if reservation else None
        booked = record["total_cost"]
        if reserved is not None and booked is not None and booked > reserved:
            self.overshoot += booked - reserved
        if self.alert_at is not None and before < self.alert_at <= after:
            warn(
                f"today's spend, {money(after)}, has passed {money(self.alert_at)}"
                f" of the {money(self.limit)} daily budget"  # type: ignore[arg-type]
            )

    def close(self) -> None:
        """Give up this process's lock file (its reservations are all settled)."""
        import contextlib

        if self._owner_lock is not None:
            self._owner_lock.release()
            with contextlib.suppress(OSError):
                os.remove(self._owner_lock.lock_file)

    def _refusal(self, spend: DaySpend, need: Decimal, what: str) -> str:
        left = max(Decimal(0), self.limit - spend.spent)  # type: ignore[operator]
        return (
            f"daily budget: {money(spend.spent)} of {money(self.limit)} spent on"  # type: ignore[arg-type]
            f" {spend.day} ({zone_name(self.zone)}), {money(left)} left; {what}"
            f" needs up to {money(need)}. Lower --max-tokens, or raise --daily-budget"
        )

    def _add_reservation(self, state: dict, need: Decimal) -> str:
        if self._owner_lock is None:
            from filelock import FileLock

            self._owner_lock = FileLock(
                self._owner_path(self.owner), thread_local=False
            )
            self._owner_lock.acquire()
        reservation = f"{self.owner}/{next(self._numbers)}"
        state["reservations"][reservation] = str(need)
        self._mine[reservation] = need
        return reservation

    def _owner_path(self, owner: str) -> str:
        return f"{self.log.path}.owner-{owner}"

    def _drop_dead_owners(self, state: dict) -> None:
        """Forget reservations of processes that ended without settling them."""
        import contextlib

        from filelock import FileLock, Timeout

        owners = {name.partition("/")[0] for name in state["reservations"]}
        for owner in owners - {self.owner}:
            lock = FileLock(self._owner_path(owner), timeout=0, thread_local=False)
            try:
                lock.acquire()
            except Timeout:
                continue  # alive: its lock is held
            lock.release()
            with contextlib.suppress(OSError):
                os.remove(lock.lock_file)
            for name in [n for n in state["reservations"] if n.startswith(owner + "/")]:
                del state["reservations"][name]

    def _spend(self, state: dict) -> DaySpend:
        day, start, end = day_window(utc_now(), self.zone)
        first, last = start.timestamp(), end.timestamp()
        spent, calls, unpriced = Decimal(0), 0, 0
        for bucket, (usd, n, n_unpriced) in state["buckets"].items():
            if first <= int(bucket) < last:
                spent += Decimal(usd)
                calls += n
                unpriced += n_unpriced
        return DaySpend(day, spent, calls, unpriced)

    @staticmethod
    def _reserved(state: dict) -> Decimal:
        return sum((Decimal(usd) for usd in state["reservations"].values()), Decimal(0))

    def _caught_up_state(self) -> dict:
        """Load the state file and read what the log gained since (lock held)."""
        state = self._load()
        self.log.repair_tail_locked()
        self._catch_up(state)
        return state

    def _load(self) -> dict:
        """The state file's contents; anything unreadable starts afresh.

        Starting afresh only costs one read of the log: spend always comes
        from the log, and reservations in flight then wait to be settled.
        """
        state = {"format": 1, "offset": 0, "line": 1, "head": "", "buckets": {}}
        state["reservations"] = {}
        try:
            with open(self.state_path, encoding="utf-8") as f:
                saved = json.load(f)
        except (OSError, ValueError):
            return state
        if isinstance(saved, dict) and saved.get("format") == 1:
            for key, default in state.items():
                if type(saved.get(key)) is type(default):
                    state[key] = saved[key]
        return state

    def _catch_up(self, state: dict) -> None:
        """Add the records appended since the last read to the spend buckets."""
        from datetime import datetime, timedelta

        head = _file_head(self.log.path)
        size = os.path.getsize(self.log.path) if head else 0
        if size < state.get("offset", 0) or not head.startswith(state.get("head", "")):
            state.update(offset=0, line=1, buckets={})  # a new or rewritten log
        window_start = utc_now() - timedelta(seconds=BUCKET_WINDOW_S)
        since = window_start.isoformat(timespec="milliseconds")
        reader = self.log.read(state["offset"], state["line"], since)
        buckets = state["buckets"]
        for _, record in reader:
            try:
                started = datetime.fromisoformat(record["timestamp"])
            except (KeyError, TypeError, ValueError):
                continue
            if started >= window_start:
                add_to_bucket(buckets, started.timestamp(), record)
        cutoff = window_start.timestamp() - BUCKET_S
        state.update(
            offset=reader.offset,
            line=reader.line,
            head=head,
            buckets={
                key: value for key, value in buckets.items() if int(key) >= cutoff
            },
        )

    def _save(self, state: dict) -> None:
        temporary = f"{self.state_path}.{self.owner}.tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(state, f)
        os.replace(temporary, self.state_path)


def add_to_bucket(buckets: dict, started_s: float, record: dict) -> None:
    """Count one record in the 15-minute bucket of the moment it started.

    >>> buckets = {}
    >>> add_to_bucket(buckets, 1800.5, {"total_cost": Decimal("0.25")})
    >>> add_to_bucket(buckets, 2000, {"total_cost": None, "prompt_tokens": 9})
    >>> buckets
    {'1800': ['0.25', 2, 1]}
    """
    key = str(int(started_s // BUCKET_S * BUCKET_S))
    usd, calls, unpriced = buckets.get(key, ["0", 0, 0])
    cost = record.get("total_cost")
    if cost is not None:
        usd = plain(Decimal(usd) + Decimal(cost))
    elif record.get("prompt_tokens") is not None:
        unpriced += 1
    buckets[key] = [usd, calls + 1, unpriced]


def _file_head(path: str) -> str:
    """The first bytes of a file, which tell one log from another."""
    try:
        with open(path, "rb") as f:
            return f.read(128).decode("latin-1")
    except FileNotFoundError:
        return ""


def worst_case_cost(
    price: Price, prompt_tokens: int, approx: bool, max_tokens: int
) -> Decimal:
    """What a call can cost at most at a table price: its prompt plus max_tokens.

    A count made with a stand-in tokenizer is raised by APPROX_PROMPT_MARGIN
    and APPROX_PROMPT_EXTRA_TOKENS first.

    >>> price = Price("x", prompt=Decimal("0.001"), completion=Decimal("0.002"))
    >>> worst_case_cost(price, 100, False, 50), worst_case_cost(price, 100, True, 50)
    (Decimal('0.0002'), Decimal('0.000262'))
    """
    import math

    if approx:
        prompt_tokens = math.ceil(prompt_tokens * APPROX_PROMPT_MARGIN)
        prompt_tokens += APPROX_PROMPT_EXTRA_TOKENS
    return call_cost(price, Usage(prompt_tokens, max_tokens))


# ---------------------------------------------------------------------------
# What to send


class Job:
    """One prompt to send, and where in the input it came from."""

    __slots__ = ("item_id", "line", "max_tokens", "model", "prompt")

    def __init__(
        self,
        prompt: str,
        model: str,
        max_tokens: int,
        line: int | None = None,
        item_id: str | None = None,
    ) -> None:
        self.prompt = prompt
        self.model = model
        self.max_tokens = max_tokens
        self.line = line
        self.item_id = item_id

    @property
    def ref(self) -> str:
        """Where the prompt came from, for messages: "id q7", "line 3" or ""."""
        if self.item_id is not None:
            return f"id {self.item_id}"
        return "" if self.line is None else f"line {self.line}"


JOB_KEYS = ("prompt", "model", "max_tokens", "id")


def read_jobs(args: argparse.Namespace, settings: Settings) -> list[Job]:
    """The prompts to send: the argument, or the input file or stdin."""
    if args.prompt not in (None, "-"):
        if args.input:
            raise ConfigError("give a prompt or --input, not both")
        if not args.prompt.strip():
            raise ConfigError("the prompt is empty; pass some text, or - for stdin")
        check_text(args.prompt, "the prompt")
        return [Job(args.prompt, settings.model, settings.max_tokens)]
    source = args.input if args.input not in (None, "-") else None
    data = read_input(source)
    name = source or "stdin"
    text = decode_input(data, name)
    input_format = args.input_format or guess_input_format(source, text)
    jobs = (
        jobs_from_jsonl(text, name, settings)
        if input_format == "jsonl"
        else jobs_from_lines(text, settings)
    )
    if not jobs:
        where = "on stdin" if source is None else f"in {source}"
        raise ConfigError(f"no prompts {where}: give one per line, or pass a prompt")
    return jobs


def check_text(text: str, what: str) -> None:
    """Refuse a command-line text that was not valid UTF-8 (Python keeps the
    bad bytes as lone surrogates, which would be sent as garbage)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"{what} is not valid UTF-8 text; check the terminal's encoding"
        ) from None


def read_input(path: str | None) -> bytes:
    """The bytes of the input file, or of stdin when `path` is None."""
    if path is not None:
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    if sys.stdin is None:
        raise ConfigError("no prompt given and no stdin to read prompts from")
    if sys.stdin.isatty():
        print("Reading prompts, one per line (Ctrl-D ends)...", file=sys.stderr)
    return sys.stdin.buffer.read()


def decode_input(data: bytes, name: str) -> str:
    """Decode UTF-8 input, naming the line of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{name} is not UTF-8 text (line {line}, byte {exc.start + 1});"
            " convert it first, e.g. with iconv -t UTF-8"
        ) from None


def input_lines(text: str) -> Iterator[tuple[int, str]]:
    """Number the non-blank lines of a text; CRLF line ends are fine.

    >>> list(input_lines("first\\r\\n\\r\\n  \\nsecond\\rthird\\n"))
    [(1, 'first'), (4, 'second'), (5, 'third')]
    """
    import re

    for number, line in enumerate(re.split(r"\r\n|\r|\n", text), 1):
        if line.strip():
            yield number, line


def guess_input_format(path: str | None, text: str) -> str:
    """JSONL for a .jsonl file, or when the first line is a prompt object."""
    if path and path.lower().endswith(".jsonl"):
        return "jsonl"
    for _, line in input_lines(text):
        try:
            first = json.loads(line)
        except ValueError:
            return "text"
        return "jsonl" if isinstance(first, dict) and "prompt" in first else "text"
    return "text"


def jobs_from_lines(text: str, settings: Settings) -> list[Job]:
    """One job per non-blank line."""
    return [
        Job(line, settings.model, settings.max_tokens, number)
        for number, line in input_lines(text)
    ]


def jobs_from_jsonl(text: str, name: str, settings: Settings) -> list[Job]:
    """One job per JSON object; a line that does not parse is reported, skipped."""
    jobs = []
    for number, line in input_lines(text):
        job = job_from_json(line, number, settings)
        if isinstance(job, Job):
            jobs.append(job)
        else:
            warn(f"{name} line {number}: {job}; skipped")
    return jobs


def job_from_json(line: str, number: int, settings: Settings) -> Job | str:
    """Read one JSONL item into a Job, or say what is wrong with it.

    >>> job_from_json('{"prompt": "Hi", "max_tokens": 0}', 1, None)
    '"max_tokens" must be a whole number above 0, got 0'
    """
    try:
        item = json.loads(line)
    except ValueError as exc:
        return f"not valid JSON ({exc.msg})"
    if not isinstance(item, dict):
        return 'expected a JSON object with a "prompt"'
    for key in item:
        if key not in JOB_KEYS:
            return f'unknown key "{key}" (known: {", ".join(JOB_KEYS)})'
    prompt, model, max_tokens, item_id = (item.get(key) for key in JOB_KEYS)
    if not isinstance(prompt, str) or not prompt.strip():
        return '"prompt" must be a non-empty string'
    if model is not None and (not isinstance(model, str) or not model.strip()):
        return f'"model" must be a model id, got {_shown(model)}'
    if max_tokens is not None and not (_is_count(max_tokens) and max_tokens > 0):
        return f'"max_tokens" must be a whole number above 0, got {_shown(max_tokens)}'
    if item_id is not None and not isinstance(item_id, (str, int)):
        return f'"id" must be a string or a number, got {_shown(item_id)}'
    return Job(
        prompt,
        model or settings.model,
        max_tokens or settings.max_tokens,
        number,
        None if item_id is None else str(item_id),
    )


# ---------------------------------------------------------------------------
# Sending prompts


class Settings:
    """Everything a run needs, resolved from the command line and environment."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.model: str = args.model or os.environ.get(ENV_MODEL) or DEFAULT_MODEL
        self.max_tokens: int = args.max_tokens
        self.system: str | None = args.system
        if args.system is not None:
            check_text(args.system, "--system")
        self.timeout_s: float = args.timeout
        self.retries: int = args.retries
        self.no_content: bool = args.no_content
        self.json_out: bool = args.json
        self.verbose: bool = args.verbose
        self.pricing_path: str = args.pricing or DEFAULT_PRICING_PATH
        self.base_url = os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
        self.log_path, self.log_format = resolve_log(args.log_file, args.log_format)
        self.daily_budget = resolve_daily_budget(args.daily_budget)
        self.zone = load_zone(args.timezone or os.environ.get(ENV_TIMEZONE))
        self.budget_alert_pct: Decimal = args.budget_alert
        self.stream: bool = args.stream
        self.concurrency: int = args.concurrency or DEFAULT_CONCURRENCY
        if self.stream and (args.concurrency or 1) > 1:
            raise ConfigError(
                "--stream prints replies as they arrive, one call at a time:"
                " leave out --concurrency, or set it to 1"
            )
        if self.stream:
            self.concurrency = 1


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


def resolve_daily_budget(option: Decimal | None) -> Decimal | None:
    """The daily budget: the option, else DAILY_BUDGET_USD, else none."""
    if option is not None:
        return option
    text = os.environ.get(ENV_DAILY_BUDGET, "").strip()
    if not text:
        return None
    try:
        return usd_amount(text)
    except argparse.ArgumentTypeError as exc:
        raise ConfigError(f"{ENV_DAILY_BUDGET}: {exc}") from None


def load_api_key(dotenv_path: str) -> str:
    """Read OPENROUTER_API_KEY (the environment wins over .env), or raise."""
    key = os.environ.get(ENV_API_KEY, "").strip()
    if not key:
        where = (
            f"the .env file found ({dotenv_path}) has none"
            if dotenv_path
            else f"no .env file in {os.getcwd()} or above"
        )
        raise ConfigError(
            f"{ENV_API_KEY} is not set ({where}): export it, or copy .env.example"
            " to .env and put your key there"
        )
    if key == PLACEHOLDER_KEY:
        raise ConfigError(
            f"{ENV_API_KEY} is still the placeholder from .env.example; put your"
            " own key in .env"
        )
    if not key.isascii() or not key.isprintable() or " " in key:
        raise ConfigError(
            f"{ENV_API_KEY} holds spaces or unusual characters; check its value"
        )
    _SECRETS.append(key)
    return key


def load_dotenv_file() -> str:
    """Load a .env file found from the current folder upwards; return its path.

    Lines python-dotenv cannot parse are reported as warnings.
    """
    import logging

    from dotenv import find_dotenv, load_dotenv

    path = find_dotenv(usecwd=True)
    if not path:
        return ""
    handler = logging.Handler()
    handler.emit = lambda entry: warn(f"{path}: {entry.getMessage()}")  # type: ignore[method-assign]
    logger = logging.getLogger("dotenv.main")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        load_dotenv(path, override=False)
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}; fix or remove it") from None
    finally:
        logger.removeHandler(handler)
    return path


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


class Outcome:
    """What became of one job: its record, or why it was not sent."""

    def __init__(self, job: Job, record: dict | None = None, note: str = "") -> None:
        self.job = job
        self.record = record
        self.note = note

    @property
    def status(self) -> str:
        """ok, error, or not_sent."""
        return self.record["status"] if self.record else "not_sent"


class Runner:
    """Sends jobs with bounded concurrency, retries, stop rules and a budget.

    The first job goes alone, so that a bad key or an empty account costs
    one request; the rest then run `concurrency` at a time. Replies print in
    input order; records are appended as calls finish. A 401, a 402, a daily
    quota, a budget refusal or Ctrl-C stops new requests from starting.
    """

    def __init__(
        self,
        settings: Settings,
        client: OpenRouterClient,
        prices: dict[str, Price],
        log: LogFile,
        budget: Budget | None,
    ) -> None:
        import threading

        self.settings = settings
        self.client = client
        self.prices = prices
        self.log = log
        self.budget = budget
        self.stop = threading.Event()
        self.stop_reason = ""
        self.exit_code = EXIT_OK
        self.totals = dict.fromkeys(("ok", "error", "not_sent"), 0)
        self.tokens = [0, 0]
        self.booked, self.unpriced = Decimal(0), 0
        self.not_sent: list[Job] = []
        # Without a budget nothing needs counting before the first request
        # leaves, so the tokenizer loads while it is on the wire.
        self.sent = threading.Event()
        self.tokenizers = Tokenizers(start_after=None if budget else self.sent)
        self._bar = None

    def halt(self, reason: str, exit_code: int) -> None:
        """Let no new request start."""
        if not self.stop.is_set():
            self.stop_reason, self.exit_code = reason, exit_code
            self.stop.set()

    def run(self, jobs: list[Job]) -> int:
        """Send every job, show each outcome in order, and return the exit code."""
        from concurrent.futures import ThreadPoolExecutor

        for job in jobs:
            self.tokenizers.prefetch(job.model)
        self._bar = progress_bar(len(jobs))
        with ThreadPoolExecutor(self.settings.concurrency) as pool:
            futures = [pool.submit(self.run_job, jobs[0])]
            shown = 0
            try:
                while shown < len(futures):
                    outcome = futures[shown].result()
                    shown += 1
                    self.show(outcome)
                    if shown == 1:  # the first call went fine: fan out
                        futures += [pool.submit(self.run_job, job) for job in jobs[1:]]
            except KeyboardInterrupt:
                self.finish_in_flight(futures[shown:], jobs[len(futures) :])
        if self._bar is not None:
            self._bar.close()
        overshoot = self.budget is not None and self.budget.overshoot
        if len(jobs) > 1 or overshoot:
            for line in self.summary():
                print(line, file=sys.stderr)
        if self.exit_code == EXIT_OK and self.totals["error"]:
            return EXIT_CALL_FAILED
        return self.exit_code

    def finish_in_flight(self, futures: list, unsent: list[Job]) -> None:
        """After Ctrl-C: wait for calls in flight to be logged, unless pressed again."""
        self.halt("interrupted (Ctrl-C)", EXIT_INTERRUPTED)
        running = sum(future.running() for future in futures)
        self.say(
            f"track_usage: interrupted: waiting for {running} call(s) in flight to"
            " finish and be logged; press Ctrl-C again to quit without them"
        )
        try:
            for future in futures:
                self.show(future.result())
            for job in unsent:
                self.show(Outcome(job))
        except KeyboardInterrupt:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)

    def run_job(self, job: Job) -> Outcome:
        """Send one job (in a worker thread) and log it."""
        if self.stop.is_set():
            return Outcome(job)
        messages = build_messages(job.prompt, self.settings.system)
        reservation = None
        if self.budget is not None:
            try:
                reservation = self.reserve(job, messages)
            except BudgetRefused as exc:
                if not self.stop.is_set():
                    self.say(f"track_usage: error: {exc}")
                self.halt(str(exc), EXIT_BUDGET)
                return Outcome(job)
        try:
            record, problem = self.send(job, messages)
        except Exception as exc:  # a bug must not lose a call that may be billed
            record, problem = self.failed_record(job, messages, exc), None
            self.halt(record["error"], EXIT_CALL_FAILED)
        try:
            if self.budget is not None:
                self.budget.settle(reservation, self.logged(record))
            else:
                self.log.append(self.logged(record))
        except LogWriteError as exc:
            self.halt(str(exc), EXIT_CALL_FAILED)
            return Outcome(job, record, f"not logged: {exc}")
        if problem is not None and problem.stops_batch:
            self.halt(str(problem), EXIT_CALL_FAILED)
        return Outcome(job, record)

    def failed_record(self, job: Job, messages: list[dict], exc: Exception) -> dict:
        """A record for a call whose reply could not be handled."""
        if os.environ.get(ENV_DEBUG):
            import traceback

            traceback.print_exc()
        record = new_record(job, messages, utc_now())
        error = f"internal error: {type(exc).__name__}: {one_line(str(exc), 200)}"
        record.update(status="error", error=f"{error} (the call may have been billed)")
        return record

    def reserve(self, job: Job, messages: list[dict]) -> str:
        """Reserve the job's worst-case cost under the daily budget."""
        price = find_price(self.prices, job.model)
        if price is None:
            raise BudgetRefused(
                f"{no_price_message(job.model, self.settings.pricing_path)}; under a"
                " daily budget every call needs a price to reserve"
            )
        counter = self.tokenizers.counter(job.model)
        prompt_tokens = counter.count_chat(messages)
        need = worst_case_cost(price, prompt_tokens, counter.approx, job.max_tokens)
        what = (
            f"{job.ref or 'the call'} ({prompt_tokens:,} prompt tokens and up to"
            f" {job.max_tokens:,} output tokens of {job.model})"
        )
        return self.budget.reserve(need, what, self.stop)  # type: ignore[union-attr]

    def send(self, job: Job, messages: list[dict]) -> tuple[dict, ApiError | None]:
        """Make the call, with retries, and build its record."""
        import time

        payload = {
            "model": job.model,
            "messages": messages,
            "max_tokens": job.max_tokens,
            "usage": {"include": True},
        }
        on_text = self.print_text if self.settings.stream else None
        record = new_record(job, messages, utc_now())
        started_s = time.perf_counter()
        problem = None
        try:
            reply = call_with_retries(
                lambda: self.client.chat(payload, self.sent, on_text),
                self.settings.retries,
                self.stop,
                lambda n, exc, wait_s: self.note_retry(job, n, exc, wait_s),
            )
        except ApiError as exc:
            partial = exc.partial
            problem = exc
            reply = partial if partial and (partial.text or partial.usage) else None
        if on_text is not None and not self.settings.json_out:
            print(flush=True)  # end the streamed reply
        record["latency_ms"] = round((time.perf_counter() - started_s) * 1000)
        record["response"] = reply.text if reply else None
        add_estimates(record, self.tokenizers.counter(job.model), messages)
        if reply is not None:
            add_reply(record, reply, self.prices)
        record["attempts"] = problem.attempts if problem else reply.attempts  # type: ignore[union-attr]
        if problem is not None:
            record.update(status="error", error=str(problem))
        return record, problem

    def logged(self, record: dict) -> dict:
        """The record as it goes into the log."""
        record = {name: record[name] for name in LOG_FIELDS}
        return without_content(record) if self.settings.no_content else record

    def print_text(self, text: str) -> None:
        if not self.settings.json_out:
            sys.stdout.write(text)
            sys.stdout.flush()

    def note_retry(
        self, job: Job, attempt: int, problem: ApiError, wait_s: float
    ) -> None:
        if self.settings.verbose:
            where = f"{job.ref}: " if job.ref else ""
            self.say(
                f"track_usage: {where}attempt {attempt} of"
                f" {self.settings.retries + 1} failed: {problem}; retrying in"
                f" {wait_s:.1f} s"
            )

    def say(self, line: str) -> None:
        """Print a line on stderr without breaking the progress bar."""
        line = redact(line)
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def show(self, outcome: Outcome) -> None:
        """Print one outcome (main thread, input order) and count it."""
        self.totals[outcome.status] += 1
        if self._bar is not None:
            self._bar.update()
        if outcome.record is None:
            self.not_sent.append(outcome.job)
            if self.settings.json_out:
                print(json.dumps(not_sent_object(outcome.job, self.stop_reason)))
            return
        record = outcome.record
        if outcome.note:
            self.say(f"track_usage: error: {outcome.note}")
        if self.settings.json_out:
            print(record_json({name: record[name] for name in LOG_FIELDS}), flush=True)
        elif record["status"] == "ok" and not self.settings.stream:
            print(record["response"] or "", flush=True)
        self.count(record)
        where = f"{outcome.job.ref}: " if outcome.job.ref else ""
        if record["status"] != "ok":
            self.say(f"track_usage: error: {where}{record['error']}")
            return
        if record["total_cost"] is None:
            model = record["model_used"] or record["model"]
            self.say(
                f"track_usage: warning: {where}"
                + no_price_message(model, self.settings.pricing_path)
            )
        if not self.settings.json_out:
            self.say(where + usage_line(record))

    def count(self, record: dict) -> None:
        self.tokens[0] += record["prompt_tokens"] or 0
        self.tokens[1] += record["completion_tokens"] or 0
        if record["total_cost"] is not None:
            self.booked += record["total_cost"]
        elif record["prompt_tokens"] is not None:
            self.unpriced += 1

    def summary(self) -> list[str]:
        """The closing lines on stderr: what was sent, what it cost, what stopped."""
        done = (
            f"Summary: {self.totals['ok']} ok, {self.totals['error']} failed,"
            f" {self.totals['not_sent']} not sent; {self.tokens[0]:,} prompt +"
            f" {self.tokens[1]:,} completion tokens; {money(self.booked)} booked"
        )
        if self.unpriced:
            done += f" ({self.unpriced} unpriced call(s) not included)"
        lines = [done]
        if self.stop_reason:
            lines.append(f"Stopped: {self.stop_reason}")
        if self.not_sent:
            refs = [job.ref or "the prompt" for job in self.not_sent]
            more = f" and {len(refs) - 20} more" if len(refs) > 20 else ""
            lines.append(f"Not sent: {', '.join(refs[:20])}{more}")
        if self.budget is not None and self.budget.overshoot:
            lines.append(
                f"Over the reservations by {money(self.budget.overshoot)}: some"
                " calls cost more than the table price allowed for (a pricier"
                " endpoint, or a longer chat template than estimated)"
            )
        return lines


def not_sent_object(job: Job, reason: str) -> dict:
    """The --json line for a prompt that was not sent."""
    return {
        "status": "not_sent",
        "input_line": job.line,
        "input_id": job.item_id,
        "model": job.model,
        "reason": reason,
    }


def progress_bar(total: int) -> object | None:
    """A progress bar on stderr for batches, when stderr is a terminal."""
    if total < 2 or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, file=sys.stderr, unit="call", leave=False)


def skip_logged(jobs: list[Job], log: LogFile, system: str | None) -> list[Job]:
    """Drop the jobs that already have an ok record for the same model and prompt."""
    done = set()
    for _, record in log.read():
        if record.get("status") != "ok":
            continue
        fingerprint = record.get("prompt_hash")
        if fingerprint is None and record.get("prompt") is not None:
            messages = build_messages(record["prompt"], record.get("system"))
            fingerprint = prompt_hash(messages)
        done.add((record.get("model"), fingerprint))
    todo = [
        job
        for job in jobs
        if (job.model, prompt_hash(build_messages(job.prompt, system))) not in done
    ]
    if len(todo) < len(jobs):
        print(
            f"Resuming: {len(jobs) - len(todo)} prompt(s) already logged as ok,"
            f" {len(todo)} to send",
            file=sys.stderr,
        )
    return todo


def cmd_send(args: argparse.Namespace) -> int:
    """Send each prompt, log it, and show the reply and its cost."""
    dotenv_path = load_dotenv_file()
    settings = Settings(args)
    jobs = read_jobs(args, settings)
    prices = load_pricing(settings.pricing_path, required=args.pricing is not None)
    if args.dry_run:
        return dry_run(jobs, settings, prices)
    key = load_api_key(dotenv_path)
    client = OpenRouterClient(settings.base_url, key, settings.timeout_s)
    log = LogFile(settings.log_path, settings.log_format)
    log.check_writable()
    if args.resume:
        jobs = skip_logged(jobs, log, settings.system)
        if not jobs:
            return EXIT_OK
    budget = None
    if settings.daily_budget is not None:
        budget = Budget(
            log, settings.daily_budget, settings.zone, settings.budget_alert_pct
        )
    try:
        return Runner(settings, client, prices, log, budget).run(jobs)
    finally:
        if budget is not None:
            budget.close()


def dry_run(jobs: list[Job], settings: Settings, prices: dict[str, Price]) -> int:
    """Count and price each prompt without sending anything."""
    tokenizers = Tokenizers()
    for job in jobs:
        tokenizers.prefetch(job.model)
    warned = set()
    for job in jobs:
        counter = tokenizers.counter(job.model)
        estimate = counter.count_chat(build_messages(job.prompt, settings.system))
        price = find_price(prices, job.model)
        if price is None and job.model not in warned:
            warned.add(job.model)
            warn(
                f"{job.model} picks a model per call, so its price is known only"
                " after the call"
                if job.model in ROUTERS
                else no_price_message(job.model, settings.pricing_path)
            )
        result = {
            "model": job.model,
            "input_line": job.line,
            "input_id": job.item_id,
            "prompt_tokens_estimated": estimate,
            "tokenizer": counter.tokenizer,
            "tokenizer_approx": counter.approx,
            "max_tokens": job.max_tokens,
            "pricing_model": price.model if price else None,
            "estimated_cost_min": None,
            "estimated_cost_max": None,
        }
        if price is not None:
            result["estimated_cost_min"] = call_cost(price, Usage(estimate, 0))
            high = Usage(estimate, job.max_tokens)
            result["estimated_cost_max"] = call_cost(price, high)
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


def cmd_budget(args: argparse.Namespace) -> int:
    """Print today's spend against the daily budget."""
    load_dotenv_file()
    path, log_format = resolve_log(args.log_file, args.log_format)
    limit = resolve_daily_budget(args.daily_budget)
    zone = load_zone(args.timezone or os.environ.get(ENV_TIMEZONE))
    spend, reserved = Budget(LogFile(path, log_format), limit, zone).today()
    remaining = None if limit is None else max(Decimal(0), limit - spend.spent)
    if args.json:
        print(
            record_json(
                {
                    "day": str(spend.day),
                    "timezone": zone_name(zone),
                    "spent": spend.spent,
                    "limit": limit,
                    "remaining": remaining,
                    "calls": spend.calls,
                    "unpriced_calls": spend.unpriced,
                    "reserved": reserved,
                }
            )
        )
        return EXIT_OK
    print(f"Day:        {spend.day} ({zone_name(zone)})")
    print(f"Spent:      {money(spend.spent)} in {spend.calls:,} call(s)")
    if spend.unpriced:
        print(f"Unpriced:   {spend.unpriced:,} call(s) with no known cost, not counted")
    if limit is None:
        print(f"Limit:      none (set --daily-budget or {ENV_DAILY_BUDGET})")
    else:
        print(f"Limit:      {money(limit)}")
        print(f"Remaining:  {money(remaining)}")  # type: ignore[arg-type]
    if reserved:
        print(f"In flight:  {money(reserved)} reserved by calls under way")
    return EXIT_OK


# ---------------------------------------------------------------------------
# Command line


def positive_int(text: str) -> int:
    """Parse a whole number from 1 to MAX_ARG_NUMBER (for argparse)."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_ARG_NUMBER:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from 1 to {MAX_ARG_NUMBER:,}, got {text!r}"
        )
    return int(text)


def count_arg(text: str) -> int:
    """Parse a whole number from 0 to 100 (for argparse)."""
    if not text.isdigit() or int(text) > 100:
        raise argparse.ArgumentTypeError(
            f"expected a whole number up to 100, got {text!r}"
        )
    return int(text)


def positive_float(text: str) -> float:
    """Parse a number of seconds above 0, up to MAX_TIMEOUT_S (for argparse)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= MAX_TIMEOUT_S:
        raise argparse.ArgumentTypeError(
            f"expected seconds above 0 and up to {MAX_TIMEOUT_S:,}, got {text!r}"
        )
    return value


def usd_amount(text: str) -> Decimal:
    """Parse a positive amount of US dollars, exactly (for argparse).

    >>> usd_amount("2.50"), usd_amount("$0.1")
    (Decimal('2.50'), Decimal('0.1'))
    """
    from decimal import InvalidOperation

    try:
        value = Decimal(text.strip().removeprefix("$"))
    except InvalidOperation:
        value = Decimal(0)
    if not (is_plausible_usd(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"expected an amount of USD above 0, got {text!r}"
        )
    return value


def percent(text: str) -> Decimal:
    """Parse a percentage from 1 to 100 (for argparse)."""
    value = usd_amount(text) if text.strip() else Decimal(0)
    if value > 100:
        raise argparse.ArgumentTypeError(
            f"expected a percentage up to 100, got {text!r}"
        )
    return value


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's layout, sized without importing shutil (a few ms at start)."""

    def __init__(self, prog: str) -> None:
        try:
            width = int(os.environ.get("COLUMNS", "")) or os.get_terminal_size().columns
        except (ValueError, OSError):
            width = 80
        super().__init__(prog, width=max(40, width - 2))


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with a one-line error that points to --help."""

    def error(self, message: str) -> NoReturn:
        hint = ""
        if "unrecognized arguments" in message:
            hint = " (a prompt with spaces needs quotes)"
        self.exit(
            EXIT_USAGE,
            f"track_usage: error: {message}{hint}; see {self.prog} --help\n",
        )


def add_budget_options(parser: argparse.ArgumentParser) -> None:
    """The options that say what the daily budget is and when a day starts."""
    parser.add_argument(
        "--daily-budget",
        type=usd_amount,
        metavar="USD",
        help=f"the most to spend per day (default: ${ENV_DAILY_BUDGET}, else none)",
    )
    parser.add_argument(
        "--timezone",
        metavar="ZONE",
        help="IANA time zone whose calendar day the budget counts, e.g."
        f" Europe/Berlin (default: ${ENV_TIMEZONE}, else the system's local time)",
    )


def add_log_options(parser: argparse.ArgumentParser) -> None:
    """The options that choose the log file."""
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help="jsonl or csv (default: from the log file's extension, else jsonl)",
    )
    parser.add_argument(
        "--log-file",
        metavar="PATH",
        help=f"the log (default: ${ENV_LOG_FILE}, else logs/token_usage.jsonl or"
        " .csv beside this script; a relative path starts in the current folder)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The main command line: prompts and the options of a run."""
    parser = ArgumentParser(
        prog="track_usage.py",
        description="Send prompts through OpenRouter; log the tokens and cost."
        "\n\nexamples:\n"
        '  track_usage.py "Explain quantum computing in simple terms."\n'
        "  track_usage.py -i prompts.txt --concurrency 8 --daily-budget 2\n"
        '  track_usage.py "Hi" -m anthropic/claude-haiku-4.5 --dry-run --json\n'
        "  track_usage.py -- budget          (a prompt that is a subcommand's name)",
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
        "-i",
        "--input",
        metavar="FILE",
        help="read prompts from FILE: one per non-blank line, or JSONL objects"
        ' {"prompt", "model", "max_tokens", "id"}',
    )
    parser.add_argument(
        "--input-format",
        choices=("text", "jsonl"),
        help="how to read the input (default: jsonl for .jsonl files or when the"
        ' first line is an object with "prompt", else text)',
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
        help=f"give up on an attempt after this long (default: {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        metavar="N",
        help=f"calls in flight at once (default: {DEFAULT_CONCURRENCY};"
        " 1 with --stream)",
    )
    parser.add_argument(
        "--retries",
        type=count_arg,
        default=DEFAULT_RETRIES,
        metavar="N",
        help="retries of a call that may succeed later: 408, 429, 5xx, timeouts,"
        f" dropped connections (default: {DEFAULT_RETRIES})",
    )
    parser.add_argument(
        "--stream", action="store_true", help="print each reply as it arrives"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip prompts the log already holds an ok record of, for the same model",
    )
    add_budget_options(parser)
    parser.add_argument(
        "--budget-alert",
        type=percent,
        default=Decimal(DEFAULT_BUDGET_ALERT_PCT),
        metavar="PERCENT",
        help="warn when the day's spend passes this share of the budget"
        f" (default: {DEFAULT_BUDGET_ALERT_PCT})",
    )
    parser.add_argument(
        "--no-content",
        action="store_true",
        help="log everything except the prompt, system and reply texts",
    )
    add_log_options(parser)
    parser.add_argument(
        "--pricing",
        metavar="PATH",
        help="the price table (default: pricing.json beside this script; without"
        " one, only OpenRouter's reported costs are booked)",
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
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show every retry on stderr"
    )
    return parser


def build_budget_parser() -> argparse.ArgumentParser:
    """track_usage.py budget: today's spend against the daily budget."""
    parser = ArgumentParser(
        prog="track_usage.py budget",
        description="Show today's spend, read from the log, against the daily budget."
        "\n\nexamples:\n  track_usage.py budget --daily-budget 5\n"
        "  track_usage.py budget --timezone America/New_York --json",
        formatter_class=HelpFormatter,
    )
    add_budget_options(parser)
    add_log_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


SUBCOMMANDS = {"budget": (build_budget_parser, cmd_budget)}


def parse_command_line(argv: list[str]) -> tuple[Callable, argparse.Namespace]:
    """Pick the subcommand, or the main command, and parse its options."""
    if argv and argv[0] in SUBCOMMANDS:
        build, command = SUBCOMMANDS[argv[0]]
        return command, build().parse_args(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.prompt in SUBCOMMANDS and "--" not in argv:
        parser.error(
            f'"{args.prompt}" is a subcommand: put it first ({parser.prog}'
            f" {args.prompt} ...), or send it as a prompt after --"
        )
    return cmd_send, args


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return the exit code."""
    for stream in (sys.stdout, sys.stderr):
        # A reply may hold characters the terminal cannot show: never crash on it.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    command, args = parse_command_line(sys.argv[1:] if argv is None else argv)
    try:
        return command(args)
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
