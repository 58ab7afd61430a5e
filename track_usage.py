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

# Only light modules are imported up here (argparse imports re anyway), so that
# --help starts fast; requests, tiktoken and the rest are imported where used.
import argparse
import json
import os
import re
import sys
from decimal import Context, Decimal

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
# --optimize drops a line repeated right after itself only from this length
# on: short repeated lines ("yes", "yes", "no") are often data.
MIN_REPEATED_LINE = 40
# How long to wait for a log's lock before saying something is wrong.
LOCK_TIMEOUT_S = 120.0
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
# Sums of money are exact: no rounding at the 28 digits of decimal's default.
EXACT = Context(prec=80)
MAX_PRICE_DIGITS = 30
MAX_PLAUSIBLE_TOKENS = 10**12
PRICE_KEYS = ("prompt", "completion", "cached_prompt", "cache_write", "request")
REQUIRED_PRICE_KEYS = ("prompt", "completion")
TIER_KEYS = ("prompt", "completion", "cached_prompt", "cache_write")
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
# Longest wait of a tokenizer load for its moment (see Tokenizers): after
# that it goes ahead, even if it slows a request down.
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
BUDGET_WAIT_NOTE_S = 5.0

SCHEMA_VERSION = 4
# Fields new in each schema version: a log written by an earlier version has
# none of them, and readers treat them as unknown.
SCHEMA_ADDITIONS = {
    2: ("input_line", "input_id", "attempts", "prompt_hash"),
    3: ("cache_hit", "saved_cost", "prompt_tokens_unoptimized"),
    4: ("reserved_cost",),
}
# The fields a report reads come first in every record, and the free texts
# last, so that a report can decode the start of each line and skip the rest.
REPORT_FIELDS = (
    "schema_version",
    "timestamp",
    "model",
    "model_used",
    "status",
    "cache_hit",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "total_cost",
    "saved_cost",
    "token_source",
    "prompt_tokens_estimated",
    "completion_tokens_estimated",
)
LOG_FIELDS = (
    *REPORT_FIELDS,
    "request_id",
    "input_line",
    "input_id",
    "provider",
    "total_tokens",
    "cache_write_tokens",
    "prompt_tokens_unoptimized",
    "tokenizer",
    "tokenizer_approx",
    "pricing_model",
    "price_prompt_per_1k",
    "price_completion_per_1k",
    "pricing_cost",
    "reported_cost",
    "is_byok",
    "cost_source",
    "reserved_cost",
    "latency_ms",
    "attempts",
    "finish_reason",
    "prompt_hash",
    "error",
    "system",
    "prompt",
    "response",
)
CONTENT_FIELDS = ("system", "prompt", "response")
# Valid inside JSON strings, but line breaks to many line-splitting readers.
UNICODE_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
INT_FIELDS = frozenset(
    {"schema_version", "latency_ms", "input_line", "attempts"}
    | {"prompt_tokens_unoptimized"}
    | {name for name in LOG_FIELDS if name.endswith(("_tokens", "_estimated"))}
)
DECIMAL_FIELDS = frozenset(
    name for name in LOG_FIELDS if name.endswith(("_cost", "_per_1k"))
)
BOOL_FIELDS = frozenset({"tokenizer_approx", "is_byok", "cache_hit"})
# A spreadsheet runs a cell starting with one of these as a formula, so such
# CSV cells get a leading "'"; so does a cell starting with "'", which lets a
# reader always strip exactly one.
CSV_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")

EXIT_CODES_HELP = """\
subcommands (each has its own --help):
  budget                today's spend against the daily budget
  report                totals from the log, by day, week, month or model
  chart                 daily cost and tokens as a PNG or an HTML page
  pricing               show the price table, or update it from OpenRouter
  optimize              preview the rewrite --optimize applies to a prompt

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
# A text holding this many of its first characters is taken for an echo of it.
SECRET_PREFIX_CHARS = 16
_SECRETS: list[str] = []


def redact(text: str) -> str:
    """Replace every known secret in a text with ***, and anything that starts
    like one (a secret echoed back, cut short).

    >>> _SECRETS.append("sk-or-v1-doctest-0000-not-a-key")
    >>> redact("key sk-or-v1-doctest-0000-not-a-key and sk-or-v1-doctest-00...")
    'key *** and ***...'
    >>> _SECRETS.pop() and None
    """
    for secret in _SECRETS:
        text = text.replace(secret, "***")
        start = re.escape(secret[:SECRET_PREFIX_CHARS])
        text = re.sub(start + r"[\w-]*", "***", text)
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
    """One pricing.json entry: USD per 1K tokens, plus a fee per call.

    `tiers` are the long-context surcharges: (min_prompt_tokens, Price) pairs,
    ascending, each holding every rate that applies from that many prompt
    tokens on.
    """

    __slots__ = ("model", "tiers", *PRICE_KEYS)

    def __init__(self, model: str, tiers: tuple = (), **usd_per_1k: Decimal) -> None:
        self.model = model
        self.tiers: tuple[tuple[int, Price], ...] = tiers
        self.prompt: Decimal = usd_per_1k["prompt"]
        self.completion: Decimal = usd_per_1k["completion"]
        self.cached_prompt: Decimal | None = usd_per_1k.get("cached_prompt")
        self.cache_write: Decimal | None = usd_per_1k.get("cache_write")
        self.request: Decimal = usd_per_1k.get("request", Decimal(0))

    def for_prompt(self, prompt_tokens: int) -> Price:
        """The rates that apply to a call with this many prompt tokens."""
        rates = self
        for min_prompt_tokens, tier in self.tiers:
            if prompt_tokens >= min_prompt_tokens:
                rates = tier
        return rates

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
    table = parse_pricing(data, path)
    suspicious = unit_mixups(table)
    if suspicious:
        warn(
            f"{path}: {len(suspicious)} price(s) look like a unit mix-up (USD per 1M"
            f" tokens, or per token, instead of per 1K): {'; '.join(suspicious[:5])}"
        )
    return table


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
    for key in sorted(set(entry) - {*PRICE_KEYS, "tiers"}):
        raise ConfigError(
            f'{where}: unknown key "{key}" (known: {", ".join(PRICE_KEYS)}, tiers)'
        )
    for key in REQUIRED_PRICE_KEYS:
        if key not in entry:
            raise ConfigError(f'{where}: "{key}" is missing')
    rates = {
        key: _usd(value, key, where) for key, value in entry.items() if key != "tiers"
    }
    tiers = entry.get("tiers", [])
    if not isinstance(tiers, list):
        raise ConfigError(f'{where}: "tiers" must be a list of objects')
    return Price(
        model,
        tuple(
            sorted(
                (
                    _parse_tier(model, tier, rates, f"{where}: tier {n}")
                    for n, tier in enumerate(tiers, 1)
                ),
                key=lambda pair: pair[0],
            )
        ),
        **rates,
    )


def _parse_tier(model: str, tier: object, base: dict, where: str) -> tuple[int, Price]:
    """One long-context tier: rates from min_prompt_tokens on, the rest inherited."""
    if not isinstance(tier, dict):
        raise ConfigError(f"{where}: expected an object")
    for key in sorted(set(tier) - {*TIER_KEYS, "min_prompt_tokens"}):
        raise ConfigError(f'{where}: unknown key "{key}"')
    threshold = tier.get("min_prompt_tokens")
    whole = isinstance(threshold, (int, Decimal)) and not isinstance(threshold, bool)
    if not whole or threshold != int(threshold) or threshold < 1:
        raise ConfigError(
            f'{where}: "min_prompt_tokens" must be a whole number above 0'
        )
    rates = {
        key: _usd(value, key, where) for key, value in tier.items() if key in TIER_KEYS
    }
    return int(threshold), Price(model, **{**base, **rates})


def _usd(value: object, key: str, where: str) -> Decimal:
    """Check one price from the table."""
    if not isinstance(value, Decimal):
        raise ConfigError(
            f'{where}: "{key}" must be a JSON number of USD per 1K tokens,'
            f" got {_shown(value)}"
        )
    if value < 0:
        raise ConfigError(f'{where}: "{key}" is negative ({value})')
    if not is_plausible_usd(value) or len(value.as_tuple().digits) > MAX_PRICE_DIGITS:
        raise ConfigError(f'{where}: "{key}" is not a plausible price ({value})')
    return value


def unit_mixups(table: dict[str, Price]) -> list[str]:
    """Prices that look like a unit mix-up: above 1 USD, or below 1e-6 USD, per 1K.

    >>> unit_mixups({"a/b": Price("a/b", prompt=Decimal("2.5"), completion=Decimal(0))})
    ['a/b prompt 2.5']
    """
    found = []
    for model, price in table.items():
        for rates in (price, *(tier for _, tier in price.tiers)):
            for key in TIER_KEYS:
                value = getattr(rates, key)
                if value and (value > 1 or value < Decimal("0.000001")):
                    found.append(f"{model} {key} {plain(value)}")
    return list(dict.fromkeys(found))


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

    price = price.for_prompt(usage.prompt_tokens)
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

    tiktoken makes an encoding in two steps: it reads the BPE file, in Python
    that takes turns with the other threads, then builds the encoder in Rust,
    which holds the GIL for 0.1-0.2 s so that no other thread runs at all.
    Each step can be told to wait for an event, so that it runs while
    requests are on the wire instead of delaying one: reading waits for
    `read_after`, building for `build_after`. Asking for a counter lets both
    go ahead at once, unless the caller passes `wait=True`: then it relies on
    the owner of the events to set them (each wait ends after
    TOKENIZER_HOLD_MAX_S anyway). An encoding that cannot be loaded is
    reported once on stderr, and counts fall back to UTF-8 bytes / 4.
    """

    def __init__(
        self,
        read_after: threading.Event | None = None,
        build_after: threading.Event | None = None,
    ) -> None:
        import threading

        self._read_after = read_after
        self._build_after = build_after
        self._lock = threading.Lock()
        self._loads: dict[str, tuple[threading.Event, dict]] = {}

    def prefetch(self, model: str) -> None:
        """Start loading the encoding a model needs, without waiting for it."""
        self._load(encoding_for_model(model)[0])

    def counter(self, model: str, wait: bool = False) -> TokenCounter:
        """Return a counter for a model, waiting for its encoding if needed."""
        name, exact = encoding_for_model(model)
        done, result = self._load(name)
        if not wait:
            for event in (self._read_after, self._build_after):
                if event is not None:
                    event.set()  # needed now: no more waiting for a request
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
        if self._read_after is not None:
            self._read_after.wait(TOKENIZER_HOLD_MAX_S)
        try:
            parts = read_encoding(name)
            if self._build_after is not None:
                self._build_after.wait(TOKENIZER_HOLD_MAX_S)
            result["count"] = _plain_text_counter(build_encoding(name, parts))
        # tiktoken reports a failed download or a bad cache file in many ways
        # (requests errors, ValueError, OSError): each only means "no encoding".
        except Exception as exc:
            result["error"] = connection_problem(exc)
        finally:
            done.set()


def read_encoding(name: str) -> dict | None:
    """Read an encoding's BPE file (downloading it if it is not cached).

    Returns the arguments of tiktoken.Encoding, from the constructors that
    tiktoken's own plugin module registers, or None when that module does
    not have the name (then tiktoken.get_encoding does both steps).
    """
    try:
        from tiktoken_ext.openai_public import ENCODING_CONSTRUCTORS
    except ImportError:  # a tiktoken laid out otherwise
        return None
    constructor = ENCODING_CONSTRUCTORS.get(name)
    return constructor() if constructor else None


def build_encoding(name: str, parts: dict | None) -> tiktoken.Encoding:
    """Build an encoding from what read_encoding returned."""
    import tiktoken

    return tiktoken.Encoding(**parts) if parts else tiktoken.get_encoding(name)


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
        self.text = _str_or_none(content)
        self.model_used = _str_or_none(body.get("model"))
        self.provider = _str_or_none(body.get("provider"))
        self.request_id = _str_or_none(body.get("id")) or generation_id
        self.finish_reason = _str_or_none(choice.get("finish_reason"))
        self.usage = parse_usage(usage)
        byok = usage.get("is_byok")
        self.is_byok: bool | None = byok if isinstance(byok, bool) else None
        self.body = body
        self.reported_cost = reported_cost(usage)
        self.attempts = 1


def _str_or_none(value: object) -> str | None:
    """A text the server sent, with any secret removed; None if not a text."""
    return redact(value) if isinstance(value, str) else None


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
    if status == 429 and re.search(DAILY_QUOTA_PATTERN, message, re.IGNORECASE):
        hint = " (a daily quota is used up: wait for it to reset, or use another model)"
    availability = error.get("availability")
    if not isinstance(availability, dict):
        availability = {}
    if retry_after is None and _is_count(availability.get("retry_after")):
        retry_after = str(availability["retry_after"])
    code = error.get("code")
    label = (
        code
        if isinstance(code, str) and code.strip() and http_status == 200
        else status
    )
    problem = ApiError(
        f"OpenRouter error {label}: {message}{hint}",
        status,
        retryable=status in RETRYABLE_STATUSES
        and availability.get("retryable") is not False,
        retry_after_s=seconds_from_retry_after(retry_after),
    )
    problem.retryable = problem.retryable and not problem.stops_batch
    return problem


def one_line(text: str, limit: int) -> str:
    """Squeeze a server's text onto one line of at most `limit` characters.

    Secrets are removed from all of it first, so that cutting never leaves
    half a key behind.
    """
    return " ".join(redact(text)[: limit * 4].split())[:limit]


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
        on_sent: Callable[[], None] | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> Reply:
        """Send one chat completion and return its reply, or raise ApiError.

        `on_sent` is called once, when the request body has been handed to
        the socket (or the attempt failed before that). With `on_text` the
        reply is streamed, and each piece of text is passed to it as it
        arrives.
        """
        import requests

        url = f"{self.base_url}/chat/completions"
        payload = {**payload, "stream": True} if on_text else payload
        body = _BodyThatSignals(json.dumps(payload).encode(), on_sent)
        try:
            response = self._session().post(
                url,
                data=body,
                timeout=self.timeout_s,
                stream=on_text is not None,
                allow_redirects=False,  # a re-sent POST would have no body
            )
            content_type = response.headers.get("Content-Type", "")
            if on_text is not None and content_type.startswith("text/event-stream"):
                return read_stream(sse_lines(response.iter_content(1 << 16)), on_text)
            reply = read_reply(response)
            if on_text is not None and reply.text:
                on_text(reply.text)  # a server that does not stream: all at once
            return reply
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
            body.signal()

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
        problem.retryable = problem.retryable and problem.partial is None
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
        for data in sse_events(lines):
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
                billed = texts or isinstance(body.get("usage"), dict)
                problem.retryable = problem.retryable and not billed
                raise problem
            merge_chunk(body, chunk, texts, on_text)
    except (requests.RequestException, ValueError, RecursionError) as exc:
        problem = ApiError(f"the stream broke off: {connection_problem(exc)}")
        problem.partial = stream_reply(body, texts)
        problem.retryable = False  # what was shown cannot be taken back
        raise problem from None
    problem = ApiError("the stream ended before it was complete")
    problem.partial = stream_reply(body, texts)
    raise problem


def sse_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Split a byte stream into lines (LF, CRLF or CR), in time linear in its
    length however long a line is."""
    pending = b""
    for chunk in chunks:
        lines = re.split(rb"\r\n|\r|\n", pending + chunk)
        pending = lines.pop()
        yield from lines
    if pending:
        yield pending


def sse_events(lines: Iterable[bytes]) -> Iterator[bytes]:
    """The data of each server-sent event: its "data:" lines joined by newlines.

    Comments (lines that start with ":") and other fields are skipped.

    >>> lines = [b": OPENROUTER PROCESSING", b"", b'data: {"a":', b"data: 1}", b""]
    >>> list(sse_events(lines))
    [b'{"a":\\n1}']
    """
    data: list[bytes] = []
    for line in lines:
        if not line:
            if data:
                yield b"\n".join(data)
            data = []
        elif line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
    if data:
        yield b"\n".join(data)


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
    usage = chunk.get("usage")
    if isinstance(usage, dict) and (
        usage.get("cost") is not None or "usage" not in body
    ):
        body["usage"] = usage
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
    """A request body that calls back once the HTTP client has read all of it.

    That is when the request is on the wire, and a background tokenizer load
    may go on without slowing it down.
    """

    def __init__(self, data: bytes, on_sent: Callable[[], None] | None) -> None:
        import io

        self._buffer = io.BytesIO(data)
        self._on_sent = on_sent
        self.len = len(data)  # lets requests send a Content-Length

    def read(self, size: int = -1) -> bytes:
        chunk = self._buffer.read(size)
        if not chunk:
            self.signal()
        return chunk

    def signal(self) -> None:
        """Call back, the first time only."""
        on_sent, self._on_sent = self._on_sent, None
        if on_sent is not None:
            on_sent()

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
        cache_hit=False,
    )
    price = find_price(prices, record["model"], reply.model_used)
    if price is not None:
        rates = price.for_prompt(usage.prompt_tokens)
        record.update(
            pricing_model=price.model,
            price_prompt_per_1k=rates.prompt,
            price_completion_per_1k=rates.completion,
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
    text = to_json(record, ensure_ascii)
    for character, escaped in UNICODE_LINE_BREAKS.items():
        if character in text:  # rare; and str.translate is slow on non-ASCII
            text = text.replace(character, escaped)
    return text


def to_json(value: object, ensure_ascii: bool = False) -> str:
    """JSON text in which Decimals keep every digit, in plain notation."""
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, dict):
        items = (
            f"{json.dumps(str(k))}: {to_json(v, ensure_ascii)}"
            for k, v in value.items()
        )
        return "{" + ", ".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(to_json(item, ensure_ascii) for item in value) + "]"
    return json.dumps(value, ensure_ascii=ensure_ascii)


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
        from filelock import FileLock, Timeout

        self._thread_lock.acquire()
        try:
            if self._file_lock is None:
                self._file_lock = FileLock(self.path, thread_local=False)
            self._file_lock.acquire(timeout=LOCK_TIMEOUT_S)
        except BaseException as exc:
            self._thread_lock.release()
            if isinstance(exc, Timeout):
                raise TrackUsageError(
                    f"could not lock {self.path} in {LOCK_TIMEOUT_S:g} s: another"
                    " process holds it, or its folder does not allow lock files"
                ) from None
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
        """Create the log's folder and file, or raise ConfigError.

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
            # No lock yet: importing filelock can wait until the first request
            # is on its way.
            with open(self.path, "a+b") as f:
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
    # With CRLF as the line end, the writer quotes any cell holding a CR or an
    # LF, so no reader can split a record on a lone CR.
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
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
    """Name a zone for people: its IANA key, or "CET, local time"."""
    if zone is not None:
        return str(zone)
    from datetime import datetime

    return f"{datetime.now().astimezone().tzname()}, local time"


class DaySpend:
    """What a day's log says: money booked, calls made, calls with no price."""

    def __init__(
        self,
        day: date,
        spent: Decimal,
        calls: int,
        unpriced: int,
        assumed: Decimal = Decimal(0),
    ) -> None:
        self.day = day
        self.spent = spent
        self.calls = calls
        self.unpriced = unpriced
        self.assumed = assumed  # in `spent`: unknown costs, counted as reserved


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
            self._drop_dead_owners(state)
            self._save(state)
        return self._spend(state), self._reserved(state)

    def reserve(self, need: Decimal, what: str, stop: threading.Event) -> str:
        """Set aside `need` dollars for a call, or raise BudgetRefused.

        When the call would fit once the calls in flight settle, waits for
        them rather than refusing.
        """
        import time

        limit = self.limit
        assert limit is not None, "reserve() needs a daily budget"
        started_s, said = time.monotonic(), False
        while True:
            reservation, spend = self._try_reserve(need)
            if reservation is not None:
                return reservation
            if spend.spent + need > limit or stop.is_set():
                raise BudgetRefused(self._refusal(spend, need, what))
            if not said and time.monotonic() - started_s > BUDGET_WAIT_NOTE_S:
                said = True
                warn(f"{what} waits for calls in flight to settle, to fit the budget")
            stop.wait(BUDGET_POLL_S)

    def release(self, reservation: str) -> None:
        """Give back a reservation whose call was not made."""
        with self.log.lock:
            state = self._caught_up_state()
            state["reservations"].pop(reservation, None)
            self._save(state)
        self._mine.pop(reservation, None)

    def try_reserve(self, need: Decimal) -> str | None:
        """Set aside `need` dollars if they fit right now; else None."""
        return self._try_reserve(need)[0]

    def _try_reserve(self, need: Decimal) -> tuple[str | None, DaySpend]:
        assert self.limit is not None
        with self.log.lock:
            state = self._caught_up_state()
            self._drop_dead_owners(state)
            spend = self._spend(state)
            reservation = None
            if spend.spent + self._reserved(state) + need <= self.limit:
                reservation = self._add_reservation(state, need)
            self._save(state)
        return reservation, spend

    def settle(self, reservation: str | None, record: dict) -> None:
        """Append a call's record and release its reservation, in one step."""
        if reservation is not None:
            record = {**record, "reserved_cost": self._mine.get(reservation)}
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
        limit, alert_at = self.limit, self.alert_at
        if limit is not None and alert_at is not None and before < alert_at <= after:
            warn(
                f"today's spend, {money(after)}, has passed {money(alert_at)}"
                f" of the {money(limit)} daily budget"
            )

    def close(self) -> None:
        """Give up this process's lock file (its reservations are all settled)."""
        import contextlib

        if self._owner_lock is not None:
            self._owner_lock.release()
            with contextlib.suppress(OSError):
                os.remove(self._owner_lock.lock_file)

    def _refusal(self, spend: DaySpend, need: Decimal, what: str) -> str:
        limit = self.limit or Decimal(0)
        left = max(Decimal(0), limit - spend.spent)
        return (
            f"daily budget: {money(spend.spent)} of {money(limit)} spent on"
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
        spent, calls, unpriced, assumed = Decimal(0), 0, 0, Decimal(0)
        for bucket, (usd, n, n_unpriced, usd_assumed) in state["buckets"].items():
            if first <= int(bucket) < last:
                spent = EXACT.add(spent, Decimal(usd))
                calls += n
                unpriced += n_unpriced
                assumed = EXACT.add(assumed, Decimal(usd_assumed))
        return DaySpend(day, spent, calls, unpriced, assumed)

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
        """The state file's contents; anything unreadable or implausible starts
        afresh, which only costs one read of the log."""
        fresh = {"format": 2, "offset": 0, "line": 1, "log": ["", "", 0]}
        fresh.update(buckets={}, reservations={})
        try:
            with open(self.state_path, encoding="utf-8") as f:
                saved = json.load(f, parse_float=Decimal)
        except (OSError, ValueError, RecursionError):
            return fresh
        return saved if valid_budget_state(saved) else fresh

    def _catch_up(self, state: dict) -> None:
        """Add the records appended since the last read to the spend buckets."""
        from datetime import timedelta

        fingerprint = log_fingerprint(self.log.path, state["offset"])
        if fingerprint != state["log"]:  # a new, replaced or rewritten log
            state.update(offset=0, line=1, buckets={})
        window_start = utc_now() - timedelta(seconds=BUCKET_WINDOW_S)
        since = window_start.isoformat(timespec="milliseconds")
        reader = self.log.read(state["offset"], state["line"], since)
        buckets = state["buckets"]
        for _, record in reader:
            started = utc_moment(record.get("timestamp"))
            if started is not None and started >= window_start:
                add_to_bucket(buckets, started.timestamp(), record)
        cutoff = window_start.timestamp() - BUCKET_S
        state.update(
            offset=reader.offset,
            line=reader.line,
            log=log_fingerprint(self.log.path, reader.offset),
            buckets={
                key: value for key, value in buckets.items() if int(key) >= cutoff
            },
        )

    def _save(self, state: dict) -> None:
        import contextlib
        import threading

        temporary = f"{self.state_path}.{self.owner}-{threading.get_ident()}.tmp"
        try:
            with open(temporary, "w", encoding="utf-8") as f:
                f.write(to_json(state))
            os.replace(temporary, self.state_path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(temporary)
            raise LogWriteError(
                f"could not update {self.state_path} ({exc.strerror or exc}); the"
                " log itself is complete"
            ) from None


def add_to_bucket(buckets: dict, started_s: float, record: dict) -> None:
    """Count one record in the 15-minute bucket of the moment it started.

    A bucket is [USD spent, calls, calls with no known cost, USD of those
    counted at their reservation]: a call whose cost is unknown spent at
    most what it reserved, so the budget counts that much.

    >>> buckets = {}
    >>> add_to_bucket(buckets, 1800.5, {"total_cost": Decimal("0.25")})
    >>> add_to_bucket(buckets, 2000, {"total_cost": None, "prompt_tokens": 9,
    ...                               "reserved_cost": Decimal("0.5")})
    >>> buckets
    {'1800': ['0.75', 2, 1, '0.5']}
    """
    key = str(int(started_s // BUCKET_S * BUCKET_S))
    usd, calls, unpriced, assumed = buckets.get(key, ["0", 0, 0, "0"])
    cost, reserved = record.get("total_cost"), record.get("reserved_cost")
    if is_plausible_usd(cost):
        usd = plain(EXACT.add(Decimal(usd), Decimal(cost)))
    elif record.get("prompt_tokens") is not None or cost is not None:
        unpriced += 1
        if is_plausible_usd(reserved):
            usd = plain(EXACT.add(Decimal(usd), Decimal(reserved)))
            assumed = plain(EXACT.add(Decimal(assumed), Decimal(reserved)))
    buckets[key] = [usd, calls + 1, unpriced, assumed]


def log_fingerprint(path: str, offset: int) -> list:
    """What tells a log from another: its first bytes, the bytes just before
    `offset` (where reading stopped), and its inode."""
    try:
        with open(path, "rb") as f:
            head = f.read(128)
            f.seek(max(0, offset - 64))
            before = f.read(min(offset, 64))
            inode = os.fstat(f.fileno()).st_ino
    except OSError:
        return ["", "", 0]
    return [head.decode("latin-1"), before.decode("latin-1"), inode]


def valid_budget_state(state: object) -> bool:
    """Check a state file's contents before the budget trusts them."""
    if not isinstance(state, dict) or state.get("format") != 2:
        return False
    offset, line, log = state.get("offset"), state.get("line"), state.get("log")
    if not (_is_count(offset) and _is_count(line) and line >= 1):
        return False
    if not (isinstance(log, list) and len(log) == 3):
        return False
    buckets, reservations = state.get("buckets"), state.get("reservations")
    if not (isinstance(buckets, dict) and isinstance(reservations, dict)):
        return False
    for key, bucket in buckets.items():
        if not key.isdigit() or not isinstance(bucket, list) or len(bucket) != 4:
            return False
        usd, calls, unpriced, assumed = bucket
        if not all(_is_usd_text(v) for v in (usd, assumed)):
            return False
        if not (_is_count(calls) and _is_count(unpriced)):
            return False
    return all(
        re.fullmatch(r"\d+-[0-9a-f]{8}/\d+", name) and _is_usd_text(usd)
        for name, usd in reservations.items()
    )


def _is_usd_text(text: object) -> bool:
    from decimal import InvalidOperation

    try:
        return isinstance(text, str) and is_plausible_usd(Decimal(text))
    except InvalidOperation:
        return False


def utc_moment(timestamp: object) -> datetime | None:
    """Read an ISO timestamp; one without an offset is taken to be UTC."""
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(str(timestamp))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def prompt_bytes_bound(messages: list[dict[str, str]]) -> int:
    """An upper bound of the prompt tokens that needs no tokenizer.

    Byte-level tokenizers never make more tokens than bytes; the framing, and a
    chat template's own tokens, are added on top.

    >>> prompt_bytes_bound([{"role": "user", "content": "Héllo"}])
    48
    """
    text_bytes = sum(len((m["role"] + m["content"]).encode()) for m in messages)
    framing = TOKENS_PER_MESSAGE * len(messages) + REPLY_PRIMING_TOKENS
    return text_bytes + framing + APPROX_PROMPT_EXTRA_TOKENS


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

    __slots__ = ("item_id", "line", "max_tokens", "model", "original", "prompt")

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
        self.original: str | None = None  # the prompt before --optimize

    def optimize(self) -> None:
        """Send the prompt as optimize_prompt rewrites it."""
        self.original, self.prompt = self.prompt, optimize_prompt(self.prompt)

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
    if input_format == "whole":
        jobs = [Job(text.strip(), settings.model, settings.max_tokens, 1)]
        jobs = jobs if text.strip() else []
    elif input_format == "jsonl":
        jobs = jobs_from_jsonl(text, name, settings)
    else:
        jobs = jobs_from_lines(text, settings)
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
            settings.skipped_lines += 1
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
        self.skipped_lines = 0  # input lines that could not be read
        self.json_out: bool = args.json
        self.verbose: bool = args.verbose
        self.pricing_path: str = args.pricing or DEFAULT_PRICING_PATH
        self.base_url = os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
        self.log_path, self.log_format = resolve_log(args.log_file, args.log_format)
        self.daily_budget = resolve_daily_budget(args.daily_budget)
        self.zone = load_zone(args.timezone or os.environ.get(ENV_TIMEZONE))
        self.budget_alert_pct: Decimal = args.budget_alert
        self.stream: bool = args.stream
        wants_cache = args.cache or args.cache_dir is not None
        self.cache_dir = (
            (args.cache_dir or default_cache_dir()) if wants_cache else None
        )
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

    def as_warning(entry: logging.LogRecord) -> bool:
        warn(f"{path}: {entry.getMessage()}")
        return False  # said here, in this tool's words: not again by logging

    logger = logging.getLogger("dotenv.main")
    logger.addFilter(as_warning)
    try:
        load_dotenv(path, override=False)
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}; fix or remove it") from None
    finally:
        logger.removeFilter(as_warning)
    return path


def usage_line(record: dict, table: str = "pricing.json") -> str:
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
    source = {
        "reported": "billed by OpenRouter",
        "pricing": f"from {table}",
        "cache": "answered from the local cache",
    }
    note = source[record["cost_source"]]
    if record["token_source"] == "estimate":
        note += ", estimated tokens"
    if record.get("saved_cost"):
        note += f"; saved {money(record['saved_cost'])}"
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
        # Set once the first call's outcome is known: then the rest fan out.
        self.first_answer = threading.Event()
        # Without a budget nothing needs counting before requests leave, so
        # the tokenizer reads its file while the first request is on the
        # wire, and builds its encoder (when no other thread runs) once the
        # first wave of `concurrency` requests is, or once no more will go.
        self.first_sent, self.wave_sent = threading.Event(), threading.Event()
        self.wave_size = 1
        self.requests_sent = 0
        self._count_lock = threading.Lock()
        self.tokenizers = Tokenizers(self.first_sent, self.wave_sent)
        self.cache = ResponseCache(settings.cache_dir) if settings.cache_dir else None
        self.optimized_away = 0
        self._bar = None

    def halt(self, reason: str, exit_code: int) -> None:
        """Let no new request start."""
        if not self.stop.is_set():
            self.stop_reason, self.exit_code = reason, exit_code
            self.stop.set()
            self.wave_sent.set()

    def run(self, jobs: list[Job]) -> int:
        """Send every job, show each outcome in order, and return the exit code."""
        from concurrent.futures import ThreadPoolExecutor

        self.wave_size = min(self.settings.concurrency, len(jobs))
        for job in jobs:
            self.tokenizers.prefetch(job.model)
        self._bar = progress_bar(len(jobs))
        with ThreadPoolExecutor(self.settings.concurrency) as pool:
            futures = [pool.submit(self.run_job, jobs[0])]
            shown = 0
            try:
                self.first_answer.wait()
                futures += [pool.submit(self.run_job, job) for job in jobs[1:]]
                while shown < len(futures):
                    outcome = futures[shown].result()
                    shown += 1
                    self.show(outcome)
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

    def request_sent(self) -> None:
        """Count a request on the wire (called by the HTTP client)."""
        with self._count_lock:
            self.requests_sent += 1
            sent = self.requests_sent
        self.first_sent.set()
        if sent >= self.wave_size:
            self.wave_sent.set()

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
        try:
            return self._run_job(job)
        finally:
            self.first_answer.set()

    def _run_job(self, job: Job) -> Outcome:
        if self.stop.is_set():
            return Outcome(job)
        messages = build_messages(job.prompt, self.settings.system)
        payload = {
            "model": job.model,
            "messages": messages,
            "max_tokens": job.max_tokens,
            "usage": {"include": True},
        }
        cached = self.cache.get(payload) if self.cache else None
        if cached is not None:
            return self.log_outcome(job, self.cached_record(job, messages, *cached))
        reservation = None
        if self.budget is not None:
            try:
                reservation = self.reserve(job, messages)
            except BudgetRefused as exc:
                if not self.stop.is_set():
                    self.say(f"track_usage: error: {exc}")
                self.halt(str(exc), EXIT_BUDGET)
                return Outcome(job)
            if self.stop.is_set():  # stopped while this job waited for room
                self.budget.release(reservation)
                return Outcome(job)
        try:
            record, reply = self.send(job, payload)
        except Exception as exc:  # a bug must not lose a call that may be billed
            record, reply = self.failed_record(job, messages, exc), None
            self.halt(record["error"], EXIT_CALL_FAILED)
        if self.cache and reply is not None and record["status"] == "ok":
            self.cache.put(payload, reply, record["total_cost"])
        return self.log_outcome(job, record, reservation)

    def log_outcome(
        self, job: Job, record: dict, reservation: str | None = None
    ) -> Outcome:
        """Log a record (settling its reservation) and say what became of the job."""
        try:
            if self.budget is not None:
                self.budget.settle(reservation, self.logged(record))
            else:
                self.log.append(self.logged(record))
        except LogWriteError as exc:
            self.halt(str(exc), EXIT_CALL_FAILED)
            return Outcome(job, record, f"not logged: {exc}")
        return Outcome(job, record)

    def cached_record(
        self, job: Job, messages: list[dict], reply: Reply, saved: Decimal | None
    ) -> dict:
        """The record of a call answered from the local cache: nothing was sent."""
        record = new_record(job, messages, utc_now())
        record.update(
            status="ok",
            cache_hit=True,
            response=reply.text,
            request_id=reply.request_id,
            model_used=reply.model_used,
            provider=reply.provider,
            finish_reason=reply.finish_reason,
            token_source="cache",
            total_cost=Decimal(0),
            cost_source="cache",
            saved_cost=saved,
            attempts=0,
            latency_ms=0,
            **dict.fromkeys(("prompt_tokens", "completion_tokens", "total_tokens"), 0),
            **dict.fromkeys(
                ("cached_tokens", "cache_write_tokens", "reasoning_tokens"), 0
            ),
        )
        self.add_estimates(record, job, messages)
        return record

    def add_estimates(
        self, record: dict, job: Job, messages: list[dict], wait: bool = False
    ) -> None:
        """Record the local estimates, and the prompt's size before --optimize.

        After a request, `wait` lets the tokenizer keep to its moment (see
        __init__): the wave is on its way, or the batch has stopped.
        """
        counter = self.tokenizers.counter(job.model, wait=wait)
        add_estimates(record, counter, messages)
        if job.original is not None:
            original = build_messages(job.original, self.settings.system)
            record["prompt_tokens_unoptimized"] = counter.count_chat(original)

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
        # A bound that needs no tokenizer first: no token is shorter than a
        # byte. Only when it does not fit is the prompt counted exactly.
        budget = self.budget
        assert budget is not None
        bound = worst_case_cost(
            price, prompt_bytes_bound(messages), False, job.max_tokens
        )
        reservation = budget.try_reserve(bound)
        if reservation is not None:
            return reservation
        counter = self.tokenizers.counter(job.model)
        prompt_tokens = counter.count_chat(messages)
        need = worst_case_cost(price, prompt_tokens, counter.approx, job.max_tokens)
        what = (
            f"{job.ref or 'the call'} ({prompt_tokens:,} prompt tokens and up to"
            f" {job.max_tokens:,} output tokens of {job.model})"
        )
        return budget.reserve(need, what, self.stop)

    def send(self, job: Job, payload: dict) -> tuple[dict, Reply | None]:
        """Make the call, with retries; stop the batch when every later call
        would fail the same way; build the call's record."""
        import time

        messages = payload["messages"]
        on_text = self.print_text if self.settings.stream else None
        started, started_s = utc_now(), time.perf_counter()
        problem = None
        try:
            reply = call_with_retries(
                lambda: self.client.chat(payload, self.request_sent, on_text),
                self.settings.retries,
                self.stop,
                lambda n, exc, wait_s: self.note_retry(job, n, exc, wait_s),
            )
        except ApiError as exc:
            partial = exc.partial
            problem = exc
            reply = partial if partial and (partial.text or partial.usage) else None
        latency_ms = round((time.perf_counter() - started_s) * 1000)
        if problem is not None and problem.stops_batch:
            self.halt(str(problem), EXIT_CALL_FAILED)
        self.first_answer.set()  # this call's outcome is known: the rest may go
        if on_text is not None and not self.settings.json_out:
            print(flush=True)  # end the streamed reply
        record = new_record(job, messages, started)
        record["latency_ms"] = latency_ms
        record["response"] = reply.text if reply else None
        self.add_estimates(record, job, messages, wait=True)
        if reply is not None:
            add_reply(record, reply, self.prices)
        record["attempts"] = (problem or reply or ApiError("")).attempts
        if problem is not None:
            record.update(status="error", error=str(problem))
        return record, reply

    def logged(self, record: dict) -> dict:
        """The record as it goes into the log."""
        record = {name: record[name] for name in LOG_FIELDS}
        return without_content(record) if self.settings.no_content else record

    def print_text(self, text: str) -> None:
        """Print a piece of a streamed reply as it arrives."""
        if not self.settings.json_out:
            sys.stdout.write(text)
            sys.stdout.flush()

    def note_retry(
        self, job: Job, attempt: int, problem: ApiError, wait_s: float
    ) -> None:
        """Show a failed attempt and the wait before the next one (-v)."""
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
            self.say(
                where + usage_line(record, os.path.basename(self.settings.pricing_path))
            )

    def count(self, record: dict) -> None:
        """Add a call's tokens and cost to the run's totals."""
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
        if self.settings.skipped_lines:
            done += f"; {self.settings.skipped_lines} input line(s) skipped"
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
    """Drop the jobs that already have an ok record for the same model and prompt
    (a prompt given three times and logged once is sent twice more)."""
    from collections import Counter

    done: Counter = Counter()
    for _, record in log.read():
        if record.get("status") != "ok":
            continue
        fingerprint = record.get("prompt_hash")
        if fingerprint is None and record.get("prompt") is not None:
            messages = build_messages(record["prompt"], record.get("system"))
            fingerprint = prompt_hash(messages)
        done[(record.get("model"), fingerprint)] += 1
    todo = []
    for job in jobs:
        key = (job.model, prompt_hash(build_messages(job.prompt, system)))
        if done[key]:
            done[key] -= 1
        else:
            todo.append(job)
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
    if args.optimize:
        for job in jobs:
            job.optimize()
    if args.compare:
        return compare_models(jobs, args.compare, settings, prices)
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
        warn_of_other_default_log(log)
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
    log = log_to_read(path, log_format)
    spend, reserved = Budget(log, limit, zone).today()
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
                    "unpriced_counted_as_reserved": spend.assumed,
                    "reserved": reserved,
                }
            )
        )
        return EXIT_OK
    print(f"Day:        {spend.day} ({zone_name(zone)})")
    print(f"Spent:      {money(spend.spent)} in {spend.calls:,} call(s)")
    if spend.unpriced:
        counted = (
            f"; {money(spend.assumed)} of the spend is their reservations"
            if spend.assumed
            else ", not counted"
        )
        print(f"Unpriced:   {spend.unpriced:,} call(s) with no known cost{counted}")
    if limit is None:
        print(f"Limit:      none (set --daily-budget or {ENV_DAILY_BUDGET})")
    else:
        print(f"Limit:      {money(limit)}")
        print(f"Remaining:  {money(max(Decimal(0), limit - spend.spent))}")
    if reserved:
        print(f"In flight:  {money(reserved)} reserved by calls under way")
    return EXIT_OK


# ---------------------------------------------------------------------------
# Reports and charts

REPORT_DIMENSIONS = ("day", "week", "month", "model")
ALWAYS_SHOWN = ("calls", "failed", "prompt_tokens", "completion_tokens", "cost")
REPORT_COLUMNS = (
    "calls",
    "failed",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost",
    "unpriced_calls",
    "unpriced_tokens",
    "cache_hits",
    "saved",
)
# A line written by this version starts with REPORT_FIELDS, so a report reads
# it with this pattern and never decodes the texts after them. Groups: the
# minute it started (UTC), model, model used, status, cache hit, the span of
# numbers (total cost and token source inside it). Any other line is decoded
# in full and turned into the same span by record_json.
_COUNT = rb"(?:\d+|null)"
REPORT_LINE = (
    rb'\{"schema_version": \d+, "timestamp": "(\d{4}-\d\d-\d\dT\d\d:\d\d)'
    rb'[:.\d]*\+00:00", "model": "([^"\\]*)", "model_used": (?:"([^"\\]*)"|null),'
    rb' "status": "(\w+)", "cache_hit": (true|false|null), ("prompt_tokens": '
    + _COUNT
    + rb', "completion_tokens": '
    + _COUNT
    + rb', "cached_tokens": '
    + _COUNT
    + rb', "reasoning_tokens": '
    + _COUNT
    + rb', "total_cost": (\d+(?:\.\d+)?|null), "saved_cost": (?:\d+(?:\.\d+)?|null),'
    rb' "token_source": (?:"(\w+)"|null), "prompt_tokens_estimated": '
    + _COUNT
    + rb', "completion_tokens_estimated": '
    + _COUNT
    + rb'), "request_id"'
)
SPAN_FIELDS = REPORT_FIELDS[REPORT_FIELDS.index("prompt_tokens") :]
SPAN_NUMBERS = (
    rb'"prompt_tokens": (\d+), "completion_tokens": (\d+), "cached_tokens": (\d+),'
    rb' "reasoning_tokens": (\d+), "total_cost": ([\d.]+), "saved_cost": ([\d.]+),'
    rb' "token_source": [^,]*, "prompt_tokens_estimated": (-?\d+),'
    rb' "completion_tokens_estimated": (-?\d+)'
)
REPORT_BLOCK_BYTES = 1 << 24


class Report:
    """Totals of a log, grouped by day, week, month and/or model.

    Read in blocks of whole lines, so that memory stays flat however long
    the log is. Money is summed exactly; calls with no known cost are counted
    apart, never as $0. The local token estimates are compared with the
    billed counts, per model.
    """

    def __init__(
        self,
        by: tuple[str, ...],
        zone: tzinfo | None,
        since: str = "",
        until: str = "",
        model: str = "",
    ) -> None:
        self.by = by
        self.zone = zone
        self.since, self.until, self.model = since, until, model
        self.groups: dict[tuple, list] = {}
        self.total = new_totals()
        self.estimates: dict[str, list] = {}
        self._hour_days: dict[bytes, bytes] = {}

    def read(self, log: LogFile) -> Report:
        """Add up every record of a log (JSONL fast, CSV and older lines slower)."""
        if not os.path.exists(log.path):
            return self
        if log.format == "csv":
            for number, record in log.read():
                where = lambda n=number: f"{log.path} line {n}"  # noqa: E731
                self._add_spans(self._spans_of([record], where))
            return self
        match = re.compile(REPORT_LINE).match
        numbers = LineNumbers(log.path)
        for offset, block, end in jsonl_blocks(log.path):

            def where(at: int, offset: int = offset) -> str:
                return f"{log.path} line {numbers.at(offset + at)}"

            self._add_spans(self._scan(block, end, match, where))
        return self

    def _scan(
        self, block: bytes, end: int, match: Callable, where: Callable
    ) -> dict[tuple, list[bytes]]:
        """Group the number spans of the block's lines (up to `end`) by what sets
        them apart; `where(position)` names a line in a warning."""
        spans: dict[tuple, list[bytes]] = {}
        day_of_hour = self._hour_days.get
        pos = 0
        while pos < end:
            line_end = block.find(b"\n", pos, end)
            line_end = end if line_end < 0 else line_end
            # A whole record ends with "}"; one cut short goes the slow way, to
            # be skipped with a warning.
            whole = block[line_end - 1 : line_end] == b"}"
            found = match(block, pos, line_end) if whole else None
            if found is not None:
                stamp, model, used, status, hit, span, cost, source = found.groups()
                day = day_of_hour(stamp[:13]) or self._day(stamp)
                if day is not None:
                    key = (day, used or model, status, hit, source, cost == b"null")
                    spans.setdefault(key, []).append(span)
                    pos = line_end + 1
                    continue
            # Any other line is decoded in full, and skipped with a warning when
            # it is not a record a call can have.
            here = lambda at=pos: where(at)  # noqa: E731
            extra = self._spans_of(_decoded_line(block[pos:line_end], here), here)
            for key, more in extra.items():
                spans.setdefault(key, []).extend(more)
            pos = line_end + 1
        return spans

    def _spans_of(
        self, records: list[dict], where: Callable[[], str]
    ) -> dict[tuple, list[bytes]]:
        """The same groups for decoded records (CSV, or lines of older versions);
        a record with numbers that cannot be right is skipped with a warning."""
        spans: dict[tuple, list[bytes]] = {}
        for record in records:
            stamp = utc_minute(record.get("timestamp"))
            day = None if stamp is None else self._day(stamp)
            if day is None or not report_numbers_ok(record):
                warn(f"{where()} has a timestamp or numbers no call can have; skipped")
                continue
            model = record.get("model_used") or record.get("model") or "unknown"
            key = (
                day,
                str(model).encode(errors="replace"),
                str(record.get("status")).encode(),
                json.dumps(record.get("cache_hit")).encode(),
                str(record.get("token_source") or "").encode() or None,
                record.get("total_cost") is None,
            )
            numbers = {name: record.get(name) for name in SPAN_FIELDS}
            spans.setdefault(key, []).append(record_json(numbers)[1:-1].encode())
        return spans

    def _day(self, stamp: bytes) -> bytes | None:
        """The day, in the report's zone, of a UTC minute such as 2026-12-04T16:15
        (None when there is no such minute)."""
        from datetime import datetime, timedelta

        hour = stamp[:13]
        try:
            start = datetime.fromisoformat(stamp.decode() + ":00+00:00")
        except ValueError:
            return None
        start = start.replace(minute=0)
        first = start.astimezone(self.zone).date()
        last = (start + timedelta(minutes=59)).astimezone(self.zone).date()
        if first == last:  # midnight is not in this hour: cache it
            self._hour_days[hour] = str(first).encode()
            return self._hour_days[hour]
        minute = start.replace(minute=int(stamp[14:16]))
        return str(minute.astimezone(self.zone).date()).encode()

    def _add_spans(self, spans: dict[tuple, list[bytes]]) -> None:
        """Sum each group's spans (in C, a column at a time) into the totals."""
        import operator

        numbers = re.compile(SPAN_NUMBERS)
        for (day, model, status, hit, source, unpriced), group in spans.items():
            key = self._group_key(day.decode(), model.decode(errors="replace"))
            if key is None:
                continue
            # An unknown count adds 0; an unknown estimate (-1) is left out.
            text = b"\n".join(group).replace(b'_estimated": null', b'_estimated": -1')
            text = text.replace(b"null", b"0")
            columns = list(zip(*numbers.findall(text), strict=True))
            counts = [list(map(int, column)) for column in columns[:4]]
            sums = group_totals(counts, columns[4:6], status, hit, unpriced)
            for totals in (self.groups.setdefault(key, new_totals()), self.total):
                totals[:] = map(operator.add, totals, sums)
            if source == b"api":
                estimated = [list(map(int, column)) for column in columns[6:]]
                name = model.decode(errors="replace")
                entry = self.estimates.setdefault(name, [0, 0.0, 0.0] * 2)
                add_estimates_error(entry, counts[:2], estimated)

    def _group_key(self, day: str, model: str) -> tuple | None:
        """The report row a day and model belong to, or None when filtered out."""
        if (self.since and day < self.since) or (self.until and day > self.until):
            return None
        if self.model and self.model not in (model, strip_date(model)):
            return None
        from datetime import date

        values = {"day": day, "month": day[:7], "model": model}
        if "week" in self.by:
            year, week, _ = date.fromisoformat(day).isocalendar()
            values["week"] = f"{year}-W{week:02d}"
        return tuple(values[name] for name in self.by)


def new_totals() -> list:
    """A row of report totals: counts, tokens and money, all zero; one more
    count at the end, of the calls with a known cost."""
    totals: list = [0] * (len(REPORT_COLUMNS) + 1)
    totals[REPORT_COLUMNS.index("cost")] = Decimal(0)
    totals[REPORT_COLUMNS.index("saved")] = Decimal(0)
    return totals


def group_totals(
    counts: list[list[int]], money: list, status: bytes, hit: bytes, unpriced: bool
) -> list:
    """A row of totals for one group of records that share status, cache hit
    and whether their cost is known: `counts` are the prompt, completion,
    cached and reasoning tokens, `money` the cost and saved texts."""
    row = new_totals()
    calls = len(counts[0])
    row[0] = calls
    row[1] = calls if status != b"ok" else 0
    row[2:6] = map(sum, counts)
    if unpriced and (status == b"ok" or row[2]):
        row[7], row[8] = calls, row[2] + row[3]
    elif not unpriced:
        row[6] = sum(map(Decimal, b" ".join(money[0]).decode().split()), Decimal(0))
        row[-1] = calls
    if hit == b"true":
        row[9] = calls
        row[10] = sum(map(Decimal, b" ".join(money[1]).decode().split()), Decimal(0))
    return row


def add_estimates_error(
    entry: list, billed: list[list[int]], estimated: list[list[int]]
) -> None:
    """Keep how far a model's local estimates were from the billed counts.

    `entry` is [calls, sum and worst of the relative prompt error, the same
    for completions]. A billed count of 0, or an estimate that is unknown
    (-1), says nothing and is left out.
    """
    import itertools
    import operator

    zero = itertools.repeat(0)
    for offset, counts, guesses in zip((0, 3), billed, estimated, strict=True):
        positive = map(operator.gt, counts, zero)
        known = list(map(operator.and_, positive, map(operator.ge, guesses, zero)))
        kept = list(itertools.compress(counts, known))
        errors = list(
            map(
                operator.truediv,
                map(operator.sub, itertools.compress(guesses, known), kept),
                kept,
            )
        )
        if errors:
            entry[offset] += len(errors)
            entry[offset + 1] += sum(errors)
            worst = max(errors, key=abs)
            if abs(worst) > abs(entry[offset + 2]):
                entry[offset + 2] = worst


def jsonl_blocks(path: str) -> Iterator[tuple[int, bytes, int]]:
    """Read a file in blocks of whole lines: (offset, block, end of its lines).

    Nothing is copied: the line that runs past a block is read again as the
    start of the next one (a line longer than a block is read whole).
    """
    with open(path, "rb") as f:
        offset = 0
        while block := f.read(REPORT_BLOCK_BYTES):
            while b"\n" not in block and (more := f.read(REPORT_BLOCK_BYTES)):
                block += more
            end = block.rfind(b"\n") + 1 or len(block)
            if end < len(block) and len(block) >= REPORT_BLOCK_BYTES:
                f.seek(offset + end)
            else:
                end = len(block)  # the end of the file, perhaps without a newline
            yield offset, block, end
            offset += end


def _decoded_line(line: bytes, where: Callable[[], str]) -> list[dict]:
    """Decode one line in full; a line that is not a record is warned about."""
    if not line.strip():
        return []
    try:
        record = json.loads(line, parse_float=Decimal)
    except (ValueError, RecursionError):
        record = None
    if not isinstance(record, dict):
        warn(
            f"{where()} is not a whole record (cut short by a crash, or edited?);"
            " skipped"
        )
        return []
    return [record]


class LineNumbers:
    """Line numbers of positions in a file, counted only when a warning asks."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._offset, self._line = 0, 1

    def at(self, offset: int) -> int:
        """The number of the line that starts at byte `offset`."""
        if offset < self._offset:
            self._offset, self._line = 0, 1
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            while self._offset < offset:
                chunk = f.read(min(offset - self._offset, REPORT_BLOCK_BYTES))
                if not chunk:
                    break
                self._line += chunk.count(b"\n")
                self._offset += len(chunk)
        return self._line


def utc_minute(timestamp: object) -> bytes | None:
    """The UTC minute of an ISO timestamp, such as b"2026-12-04T16:15"."""
    from datetime import timezone

    moment = utc_moment(timestamp)
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M").encode()


def report_numbers_ok(record: dict) -> bool:
    """Whether a record's counts and amounts are ones a call can have."""
    counts = (record.get(name) for name in SPAN_FIELDS if name.endswith("_tokens"))
    amounts = (record.get(name) for name in ("total_cost", "saved_cost"))
    return all(value is None or _is_count(value) for value in counts) and all(
        value is None or is_plausible_usd(value) for value in amounts
    )


def report_rows(report: Report) -> list[dict]:
    """The report's groups, in order, as rows of plain values."""
    rows = []
    for key in sorted(report.groups):
        totals = report.groups[key]
        rows.append({**dict(zip(report.by, key, strict=True)), **totals_dict(totals)})
    return rows


def totals_dict(totals: list) -> dict:
    """A totals row by column name; the cost of calls that all lack a price is
    unknown (None), not $0."""
    row = dict(zip(REPORT_COLUMNS, totals[: len(REPORT_COLUMNS)], strict=True))
    if row["unpriced_calls"] and not totals[-1]:
        row["cost"] = None
    return row


def estimate_rows(report: Report) -> list[dict]:
    """Per model: how far local estimates were from billed counts (mean, worst)."""
    rows = []
    for model, (n_p, sum_p, worst_p, n_c, sum_c, worst_c) in sorted(
        report.estimates.items()
    ):
        rows.append(
            {
                "model": model,
                "calls": max(n_p, n_c),
                "prompt_mean_error": round(sum_p / n_p, 4) if n_p else None,
                "prompt_worst_error": round(worst_p, 4) if n_p else None,
                "completion_mean_error": round(sum_c / n_c, 4) if n_c else None,
                "completion_worst_error": round(worst_c, 4) if n_c else None,
            }
        )
    return rows


def render_table(rows: list[dict], columns: list[str]) -> list[str]:
    """Align rows under their column names: text to the left, numbers right."""
    cells = [[format_cell(row.get(name)) for name in columns] for row in rows]
    widths = [
        max([len(name)] + [len(line[i]) for line in cells])
        for i, name in enumerate(columns)
    ]
    numeric = [
        any(isinstance(row.get(name), (int, float, Decimal)) for row in rows)
        for name in columns
    ]
    lines = []
    for line in [columns, *cells]:
        parts = [
            text.rjust(width) if right else text.ljust(width)
            for text, width, right in zip(line, widths, numeric, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return lines


def format_cell(value: object) -> str:
    """Money with fixed decimals, counts with separators, ratios as percentages."""
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, float):
        return f"{value:+.1%}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def print_report(report: Report, output_format: str) -> None:
    """Print a report as an aligned table, one JSON object, or CSV rows."""
    rows, estimates = report_rows(report), estimate_rows(report)
    if output_format == "json":
        print(
            to_json(
                {
                    "by": list(report.by),
                    "timezone": zone_name(report.zone),
                    "groups": rows,
                    "total": totals_dict(report.total),
                    "estimate_error": estimates,
                }
            )
        )
        return
    columns = [*report.by, *REPORT_COLUMNS]
    if output_format == "csv":
        cells = [[csv_cell(row[name]) for name in columns] for row in rows]
        sys.stdout.buffer.write(csv_bytes([columns, *cells]))
        return
    # Columns that would hold only zeros (no cache hits, say) are left out.
    totals = totals_dict(report.total)
    shown = [*report.by, *(c for c in REPORT_COLUMNS if totals[c] or c in ALWAYS_SHOWN)]
    total_row = {**dict.fromkeys(report.by, ""), **totals, report.by[0]: "total"}
    lines = render_table([*rows, total_row], shown)
    print("\n".join([*lines[:-1], "-" * len(lines[0]), lines[-1]]))
    unpriced = report.total[REPORT_COLUMNS.index("unpriced_calls")]
    if unpriced:
        print(
            f"\n{unpriced:,} call(s) with"
            f" {report.total[REPORT_COLUMNS.index('unpriced_tokens')]:,} tokens have no"
            " known cost: they are not in the cost column."
        )
    if estimates:
        print("\nLocal token estimates against billed counts (+: estimate too high):")
        print("\n".join(render_table(estimates, list(estimates[0]))))


def cmd_report(args: argparse.Namespace) -> int:
    """Print the log's totals, grouped and filtered."""
    load_dotenv_file()
    zone = load_zone(args.timezone or os.environ.get(ENV_TIMEZONE))
    log = log_to_read(args.log_file, args.log_format)
    report = Report(args.by, zone, args.since or "", args.until or "", args.model or "")
    print_report(report.read(log), args.format)
    return EXIT_OK


def log_to_read(log_file: str | None, log_format: str | None) -> LogFile:
    """The log to read, with a warning when it does not exist yet."""
    log = LogFile(*resolve_log(log_file, log_format))
    if not os.path.exists(log.path):
        warn(f"there is no log at {log.path} yet: nothing has been logged there")
    elif not os.path.isfile(log.path):
        raise ConfigError(
            f"the log {log.path} is not a file; choose one with --log-file"
        )
    elif log.format == "csv":
        with open(log.path, "rb") as f:
            log._csv_header(f)  # refuses a CSV file that is not a track_usage log
    warn_of_other_default_log(log)
    return log


def warn_of_other_default_log(log: LogFile) -> None:
    """Say so when the default log of the other format holds calls too: a
    budget or a report counts only one log."""
    other = f"{DEFAULT_LOG_STEM}.{'csv' if log.format == 'jsonl' else 'jsonl'}"
    if log.path == f"{DEFAULT_LOG_STEM}.{log.format}" and os.path.exists(other):
        warn(f"{other} holds calls too; only {log.path} is counted here")


def cmd_chart(args: argparse.Namespace) -> int:
    """Draw daily cost by model and daily tokens, as a PNG or an HTML page."""
    import io
    from datetime import date, timedelta

    load_dotenv_file()
    try:
        import matplotlib  # noqa: F401 - only to say clearly that it is missing
    except ImportError:
        raise ConfigError(
            "chart needs matplotlib: pip install -r requirements-optional.txt"
        ) from None
    zone = load_zone(args.timezone or os.environ.get(ENV_TIMEZONE))
    picture = os.path.splitext(args.out)[1].lower().lstrip(".")
    if picture not in CHART_FORMATS:
        raise ConfigError(
            f"chart writes {', '.join(CHART_FORMATS)} files; {args.out} is none"
        )
    log = log_to_read(args.log_file, args.log_format)
    today = args.until or str(day_window(utc_now(), zone)[0])
    days = [date.fromisoformat(today) - timedelta(days=n) for n in range(args.days)][
        ::-1
    ]
    window = {"since": str(days[0]), "until": today}
    report = Report(("day", "model"), zone, **window).read(log)
    series = chart_series(report, days)
    budget = resolve_daily_budget(args.daily_budget)
    unpriced = report.total[REPORT_COLUMNS.index("unpriced_calls")]
    if unpriced:
        warn(f"{unpriced:,} call(s) with no known cost are not in the cost bars")
    if picture in ("html", "htm"):
        png = io.BytesIO()
        draw_chart_png(days, *series, budget, zone_name(zone), png)
        table = Report(("day",), zone, **window).read(log)
        rows = [
            {k: format_cell(v) for k, v in row.items()} for row in report_rows(table)
        ]
        page = chart_html_page(png.getvalue(), chart_title(days, zone), rows)
        write_output(args.out, page.encode())
    else:
        picture_file = io.BytesIO()
        draw_chart_png(days, *series, budget, zone_name(zone), picture_file, picture)
        write_output(args.out, picture_file.getvalue())
    print(f"Wrote {args.out}", file=sys.stderr)
    return EXIT_OK


def write_output(path: str, data: bytes) -> None:
    """Write a file the user asked for, or say clearly why it cannot be."""
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


def chart_series(report: Report, days: list[date]) -> tuple[dict, list[int], list[int]]:
    """Daily cost per model (models with no known cost left out), and daily
    prompt and completion tokens."""
    index = {str(day): n for n, day in enumerate(days)}
    costs: dict[str, list[Decimal]] = {}
    prompt, completion = [0] * len(days), [0] * len(days)
    for (day, model), totals in report.groups.items():
        n = index[day]
        costs.setdefault(model, [Decimal(0)] * len(days))[n] += totals[6]
        prompt[n] += totals[2]
        completion[n] += totals[3]
    return {m: daily for m, daily in costs.items() if any(daily)}, prompt, completion


def chart_title(days: list[date], zone: tzinfo | None) -> str:
    """The chart's title: the days it covers and whose calendar."""
    return f"LLM spend per day, {days[0]} to {days[-1]} ({zone_name(zone)})"


CHART_FORMATS = ("png", "svg", "pdf", "html", "htm")
# The chart shows this many models by cost; the rest are summed as "other".
CHART_TOP_MODELS = 6
CHART_NUMBER_CELL = r"^[-+]?\$?[-+]?[\d,]*\.?\d+\s*[%kKMB]?$"


def _top_series(
    costs_by_model: dict[str, list[Decimal]], n_days: int
) -> list[tuple[str, list[Decimal]]]:
    """Return the top models by total cost, plus an "other" series for the rest."""
    ranked = sorted(costs_by_model.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    series = ranked[:CHART_TOP_MODELS]
    rest = ranked[CHART_TOP_MODELS:]
    if rest:
        other = [sum((vals[i] for _, vals in rest), Decimal(0)) for i in range(n_days)]
        label = f"other ({len(rest)} model{'s' if len(rest) > 1 else ''})"
        series.append((label, other))
    return series


def _stack(ax, days: list[date], series, colors: list[str]) -> None:
    """Draw stacked daily bars for each (label, values) pair in series."""
    bottom = [0.0] * len(days)
    for (label, values), color in zip(series, colors, strict=True):
        heights = [float(v) for v in values]
        ax.bar(days, heights, width=0.8, bottom=bottom, label=label, color=color)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]


def _date_ticks(days: list[date]) -> list[date]:
    """Pick at most ~12 tick dates: daily, every other day, or on Mondays."""
    if len(days) <= 12:
        return days
    if len(days) <= 24:
        return days[::2]
    mondays = [d for d in days if d.weekday() == 0]
    return mondays[:: -(-len(mondays) // 9)]


def _cost_panel(ax, days, costs_by_model, budget: Decimal | None) -> None:
    """Draw daily cost bars stacked by model, plus the optional budget line."""
    series = _top_series(costs_by_model, len(days))
    colors = ["0.6" if i == CHART_TOP_MODELS else f"C{i}" for i in range(len(series))]
    _stack(ax, days, series, colors)
    if budget is not None:
        label = f"daily budget ${budget:,.2f}"
        ax.axhline(float(budget), color="red", linestyle="--", label=label)
    ax.set_ylabel("USD per day")
    ax.yaxis.set_major_formatter("${x:,.2f}")


def _token_panel(ax, days, prompt_tokens: list[int], completion: list[int]) -> None:
    """Draw daily prompt and completion tokens as stacked bars."""
    series = [("prompt tokens", prompt_tokens), ("completion tokens", completion)]
    _stack(ax, days, series, ["tab:blue", "tab:orange"])
    ax.set_ylabel("tokens per day")
    ax.yaxis.set_major_formatter("{x:,.0f}")


def _style_axes(ax, min_top: float) -> None:
    """Zero-based y axis with round ticks, grid, legend outside on the right."""
    from matplotlib.ticker import MaxNLocator

    ax.set_ylim(0, max(ax.get_ylim()[1], min_top))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=10, steps=[1, 2, 2.5, 5, 10]))
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    handles, labels = ax.get_legend_handles_labels()  # reversed: top of stack first
    labels = [lb if len(lb) <= 32 else lb[:31] + "\u2026" for lb in labels]
    kw = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "frameon": False}
    ax.legend(handles[::-1], labels[::-1], **kw)


def draw_chart_png(
    days: list[date],
    costs_by_model: dict[str, list[Decimal]],
    prompt_tokens: list[int],
    completion_tokens: list[int],
    budget: Decimal | None,
    zone_name: str,
    target: str | BinaryIO,
    image_format: str = "png",
) -> None:
    """Draw daily cost (stacked by model) and daily tokens into `target`, as a
    png, svg or pdf file."""
    from matplotlib import dates as mdates
    from matplotlib.figure import Figure

    if not days:
        raise ValueError("no days to chart")
    fig = Figure(figsize=(11, 7), dpi=100, layout="constrained")
    cost_ax, tok_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    _cost_panel(cost_ax, days, costs_by_model, budget)
    _token_panel(tok_ax, days, prompt_tokens, completion_tokens)
    _style_axes(cost_ax, 0.10)  # keeps tick steps >= $0.01
    _style_axes(tok_ax, 10.0)
    tok_ax.set_xticks(_date_ticks(days))
    tok_ax.set_xticks(days, minor=True)
    tok_ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    tok_ax.set_xlim(mdates.date2num(days[0]) - 0.6, mdates.date2num(days[-1]) + 0.6)
    fig.suptitle(f"LLM spend per day, {days[0]} to {days[-1]} ({zone_name})")
    # No software version or date in the file: the same data, the same bytes.
    stamp = {
        "png": {"Software": None},
        "svg": {"Date": None},
        "pdf": {"CreationDate": None},
    }
    fig.savefig(target, format=image_format, metadata=stamp[image_format])
    fig.clear()


def _cell(text: str) -> str:
    """Return one escaped table cell, right-aligned when it looks numeric."""
    import html

    cls = ' class="num"' if re.match(CHART_NUMBER_CELL, text.strip()) else ""
    return f"<td{cls}>{html.escape(text)}</td>"


def chart_html_page(
    png_bytes: bytes, title: str, table_rows: list[dict[str, str]]
) -> str:
    """Return a self-contained HTML page with the title, inline PNG and a table."""
    import base64
    import html

    headers = list(table_rows[0]) if table_rows else []
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "\n".join(
        "<tr>" + "".join(_cell(row.get(h, "")) for h in headers) + "</tr>"
        for row in table_rows
    )
    data = base64.b64encode(png_bytes).decode("ascii")
    t = html.escape(title)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{t}</title>
<style>body {{ font-family: sans-serif; margin: 2em; }} img {{ max-width: 100%; }}
table {{ border-collapse: collapse; }} th {{ background: #eee; }}
th, td {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}</style></head>
<body><h1>{t}</h1>
<p><img src="data:image/png;base64,{data}" alt="Chart: {t}"></p>
<table><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table></body></html>
"""


# ---------------------------------------------------------------------------
# Keeping prices current

# /models pricing keys (USD per token, as strings) and ours (USD per 1K).
MODELS_LIST_PRICES = (
    ("prompt", "prompt"),
    ("completion", "completion"),
    ("input_cache_read", "cached_prompt"),
    ("input_cache_write", "cache_write"),
)


def cmd_pricing(args: argparse.Namespace) -> int:
    """Show the price table, or rewrite it from OpenRouter's model list."""
    load_dotenv_file()
    path = args.pricing or DEFAULT_PRICING_PATH
    if args.action is None:
        raise ConfigError("say what to do: pricing show [MODEL ...], or pricing update")
    if args.action == "show":
        return show_prices(load_pricing(path), args.models)
    base_url = os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    return update_prices(path, f"{base_url.rstrip('/')}/models", args.timeout)


def show_prices(table: dict[str, Price], models: list[str]) -> int:
    """Print prices per 1K and per 1M tokens, for all models or the ones named."""
    rows = []
    for model in models or sorted(table):
        price = find_price(table, model)
        if price is None:
            rows.append({"model": model, "prompt/1K": "no price"})
            continue
        rows.append(
            {
                "model": model,
                "prompt/1K": plain(price.prompt),
                "completion/1K": plain(price.completion),
                "cached/1K": plain_or_dash(price.cached_prompt),
                "cache write/1K": plain_or_dash(price.cache_write),
                "prompt/1M": plain(price.prompt * 1000),
                "completion/1M": plain(price.completion * 1000),
                "per call": plain(price.request) if price.request else "-",
                "long-context tiers": ", ".join(f">={n:,}" for n, _ in price.tiers)
                or "-",
            }
        )
    columns = list(max(rows, key=len)) if rows else ["model"]
    print("\n".join(render_table(rows, columns)))
    print("USD; a price for many tokens applies from the tier's prompt tokens on.")
    return EXIT_OK if all(len(row) > 2 for row in rows) else EXIT_CALL_FAILED


def plain_or_dash(value: Decimal | None) -> str:
    """A price in plain notation, or - when there is none."""
    return "-" if value is None else plain(value)


def update_prices(path: str, url: str, timeout_s: float) -> int:
    """Rewrite the table from {base}/models; a failed fetch changes nothing."""
    models = fetch_models_list(url, timeout_s, path)
    fresh, skipped = prices_from_models_list(models)
    if not fresh:
        raise ApiError(f"{url} listed no priced models; {path} is unchanged")
    old = read_price_entries(path)
    kept = {model: entry for model, entry in old.items() if model not in fresh}
    entries = dict(sorted({**fresh, **kept}.items()))
    table = parse_pricing({"unit": PRICING_UNIT, "models": entries}, path)
    before = parse_pricing({"unit": PRICING_UNIT, "models": old}, path)
    write_price_table(path, entries, url)
    changed = [
        line
        for model in sorted(set(before) & set(fresh))
        if (line := price_change(model, before[model], table[model]))
    ]
    added = len(set(fresh) - set(before))
    print(
        f"Updated {path} from {url}: {len(fresh)} models ({added} added,"
        f" {len(changed)} changed, {len(fresh) - added - len(changed)} unchanged),"
        f" {len(kept)} kept that the list does not have, {len(skipped)} skipped"
    )
    for line in changed:
        print(f"  changed {line}")
    for model in kept:
        print(f"  kept {model} (not in the list)")
    for reason in skipped:
        print(f"  skipped {reason}")
    return EXIT_OK


def fetch_models_list(url: str, timeout_s: float, path: str) -> list:
    """GET the model list, or raise TrackUsageError (the table stays as it was)."""
    import requests

    unchanged = f"{path} is unchanged"
    try:
        response = requests.get(url, timeout=timeout_s, allow_redirects=False)
        body = json.loads(response.content)
    except requests.RequestException as exc:
        problem = f"could not fetch {url}: {connection_problem(exc)}; {unchanged}"
        raise ApiError(problem) from None
    except (ValueError, RecursionError):
        raise ApiError(f"{url} did not answer with JSON; {unchanged}") from None
    if response.status_code != 200 or not isinstance(body, dict):
        raise ApiError(f"{url} answered HTTP {response.status_code}; {unchanged}")
    if not isinstance(body.get("data"), list):
        raise ApiError(f'{url} answered without a "data" list; {unchanged}')
    return body["data"]


def prices_from_models_list(models: list) -> tuple[dict[str, dict], list[str]]:
    """Turn /models entries into price table entries (USD per 1K), exactly.

    Returns the entries and the models skipped, with why: routers priced
    "-1" have no fixed price.

    >>> entries, skipped = prices_from_models_list([
    ...     {"id": "a/b", "pricing": {"prompt": "0.0000000833333333333333",
    ...                               "completion": "0.0000006", "request": "0.01"}},
    ...     {"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}}])
    >>> to_json(entries["a/b"])
    '{"prompt": 0.0000833333333333333, "completion": 0.0006, "request": 0.01}'
    >>> skipped
    ['openrouter/auto (no fixed price)']
    """
    entries: dict[str, dict] = {}
    skipped = []
    for model in models:
        if not isinstance(model, dict) or not isinstance(model.get("id"), str):
            continue
        if model["id"] in entries:
            skipped.append(f"{model['id']} (listed twice; the first is kept)")
            continue
        try:
            entry = price_entry(model.get("pricing"))
        except (ValueError, ArithmeticError, TypeError) as exc:
            skipped.append(f"{model['id']} ({exc})")
            continue
        if entry is None:
            skipped.append(f"{model['id']} (no fixed price)")
        else:
            entries[model["id"]] = entry
    return entries, skipped


def price_entry(pricing: object) -> dict | None:
    """One table entry from a /models "pricing" object, or None for a router
    (priced "-1"). Raises ValueError for anything that is not a price."""
    if not isinstance(pricing, dict) or not {"prompt", "completion"} & set(pricing):
        raise ValueError("no price listed")
    entry = per_1k_prices(pricing)
    if any(value < 0 for value in entry.values()):
        return None
    entry = {"prompt": Decimal(0), "completion": Decimal(0), **entry}
    if "request" in pricing:
        fee = usd_from_list(pricing["request"], scale=0)
        if fee < 0:
            raise ValueError(f"negative fee per call {pricing['request']!r}")
        if fee:
            entry["request"] = fee
    overrides = pricing.get("overrides") or []
    if not isinstance(overrides, list):
        raise ValueError("overrides is not a list")
    tiers = [tier_entry(o) for o in overrides if isinstance(o, dict)]
    if any(tiers):
        entry["tiers"] = [tier for tier in tiers if tier]
    return entry


def tier_entry(override: dict) -> dict | None:
    """A long-context tier from an override, or None for one of another kind
    (time-of-day prices are not modelled)."""
    if "min_prompt_tokens" not in override:
        return None
    threshold = override["min_prompt_tokens"]
    if not (_is_count(threshold) and threshold > 0):
        raise ValueError(f"min_prompt_tokens {threshold!r} is not a token count")
    prices = per_1k_prices(override)
    if any(value < 0 for value in prices.values()):
        raise ValueError("a negative long-context price")
    return {"min_prompt_tokens": threshold, **prices}


def per_1k_prices(pricing: dict) -> dict[str, Decimal]:
    """The per-token prices of a /models pricing object, as USD per 1K."""
    return {
        ours: usd_from_list(pricing[theirs], scale=3)
        for theirs, ours in MODELS_LIST_PRICES
        if theirs in pricing
    }


def usd_from_list(value: object, scale: int) -> Decimal:
    """A price string from the list, times 10**scale, exactly; garbage raises."""
    from decimal import InvalidOperation

    try:
        amount = Decimal(str(value)).scaleb(scale)
    except InvalidOperation:
        raise ValueError(f"unreadable price {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"unreadable price {value!r}")
    if amount < 0:
        return amount  # "-1" marks a router
    if not is_plausible_usd(amount) or len(amount.as_tuple().digits) > MAX_PRICE_DIGITS:
        raise ValueError(f"implausible price {value!r}")
    return amount


def read_price_entries(path: str) -> dict[str, dict]:
    """The raw entries of the current table, to keep the ones the list lacks."""
    if not os.path.exists(path):
        return {}
    load_pricing(path)  # refuses a malformed table before anything is replaced
    with open(path, "rb") as f:
        return json.loads(f.read(), parse_float=Decimal, parse_int=Decimal)["models"]


def write_price_table(path: str, entries: dict[str, dict], url: str) -> None:
    """Replace the table file in one step, one model per line."""
    today = utc_now().date()
    lines = [
        f"    {json.dumps(model)}: {to_json(entry)}" for model, entry in entries.items()
    ]
    text = (
        f'{{\n  "unit": "{PRICING_UNIT}",\n  "updated": "{today}",\n'
        f'  "source": {json.dumps(f"{url} on {today}, per-token prices times 1000")},\n'
        '  "models": {\n' + ",\n".join(lines) + "\n  }\n}\n"
    )
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temporary, path)


def price_change(model: str, old: Price, new: Price) -> str:
    """Describe how a model's price changed, or "" when it did not."""
    changes = [
        f"{key} {plain_or_dash(before)} -> {plain_or_dash(after)}"
        for key in PRICE_KEYS
        if (before := getattr(old, key)) != (after := getattr(new, key))
    ]
    if [n for n, _ in old.tiers] != [n for n, _ in new.tiers]:
        changes.append("long-context tiers")
    return f"{model}: {', '.join(changes)} (USD per 1K)" if changes else ""


# ---------------------------------------------------------------------------
# Cheaper calls


def optimize_prompt(text: str) -> str:
    """Shrink a prompt without changing what it says.

    Runs of spaces inside lines become one space (indentation and tabs stay),
    trailing spaces go, a long line repeated right after itself goes, blank
    lines shrink to one, and JSON that fills lines of its own is written
    compactly. Code is left byte for byte: fenced blocks (``` or ~~~) and
    `inline code`.

    NOTE: two trailing spaces that make a Markdown line break go too.

    >>> text = 'Say   hi.  \\n\\n\\n{\\n  "a": [1,  2]\\n}\\n'
    >>> optimize_prompt(text + '```\\nx  =  1\\n```')
    'Say hi.\\n\\n{"a":[1,2]}\\n```\\nx  =  1\\n```'
    """
    pieces, done = [], 0
    for block in re.finditer(CODE_FENCE, text, re.M | re.S):
        pieces += [tidy_prose(text[done : block.start()]), block.group()]
        done = block.end()
    pieces.append(tidy_prose(text[done:]))
    return "".join(pieces).strip("\n")


# A fenced code block: ``` or ~~~ (or longer), maybe indented, up to the same
# fence or the end of the text.
CODE_FENCE = r"^[ \t]*(`{3,}|~{3,}).*?(?:^[ \t]*\1[ \t]*$|\Z)"


def tidy_prose(text: str) -> str:
    """The rewrites of optimize_prompt, for text outside code blocks."""
    text = compact_json_payloads(text)
    # What follows the last newline is the start of the next piece (a code
    # block), not a line of its own.
    ending = "\n" if text.endswith("\n") else ""
    lines: list[str] = []
    for line in text.removesuffix("\n").split("\n"):
        line = squeeze_spaces(line.rstrip(" "))
        if len(line) >= MIN_REPEATED_LINE and lines and line == lines[-1]:
            continue  # a sentence said twice in a row
        if not line.strip() and lines and not lines[-1].strip():
            continue  # a second blank line
        lines.append(line)
    return "\n".join(lines) + ending


def squeeze_spaces(line: str) -> str:
    """One space for each run of spaces after the indentation, outside
    `inline code`.

    >>> squeeze_spaces("    a   b  `x  =  1`   c")
    '    a b `x  =  1` c'
    """
    body = line.lstrip(" ")
    parts = re.split(r"(`[^`]*`)", body)
    squeezed = (p if n % 2 else re.sub(r" {2,}", " ", p) for n, p in enumerate(parts))
    return line[: len(line) - len(body)] + "".join(squeezed)


def compact_json_payloads(text: str) -> str:
    """Write JSON that fills lines of its own without the space between tokens."""
    decoder = json.JSONDecoder()
    pieces, done = [], 0
    for start in (m.start(1) for m in re.finditer(r"(?m)^[ \t]*([\[{])", text)):
        if start < done:
            continue
        try:
            end = decoder.raw_decode(text, start)[1]
        except (ValueError, RecursionError):
            continue
        payload = text[start:end]
        if text[end:].split("\n", 1)[0].strip() or "\n" not in payload:
            continue  # more text follows on its line, or it is one short line
        pieces += [text[done:start], re.sub(r'("(?:[^"\\]|\\.)*")|\s+', r"\1", payload)]
        done = end
    return "".join(pieces) + text[done:]


def cmd_optimize(args: argparse.Namespace) -> int:
    """Preview what --optimize would send instead of a prompt."""
    load_dotenv_file()
    if args.prompt in (None, "-"):
        original = decode_input(read_input(None), "stdin")
    else:
        original = args.prompt
    model = args.model or os.environ.get(ENV_MODEL) or DEFAULT_MODEL
    optimized = optimize_prompt(original)
    print(optimized)
    counter = Tokenizers().counter(model)
    before, after = (
        counter.count_chat(build_messages(text, None)) for text in (original, optimized)
    )
    line = f"Prompt tokens: {before:,} -> {after:,} ({after - before:+,})"
    line += f" with {counter.tokenizer}"
    price = find_price(load_pricing(args.pricing or DEFAULT_PRICING_PATH, False), model)
    if price is not None and before > after:
        saved = call_cost(price, Usage(before, 0)) - call_cost(price, Usage(after, 0))
        line += f"; {money(saved)} less per call on {model}"
    print(line, file=sys.stderr)
    return EXIT_OK


class ResponseCache:
    """Replies kept on disk, so that the same request is never paid for twice.

    The key is the model, the messages and max_tokens. Each reply is one JSON
    file, written whole and then renamed into place.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._warned = False

    def get(self, payload: dict) -> tuple[Reply, Decimal | None] | None:
        """The stored reply and what the call cost then, or None."""
        try:
            with open(self._path(payload), "rb") as f:
                stored = json.loads(f.read(), parse_float=Decimal)
            reply = Reply(stored["body"])
            booked = stored.get("booked")
            return reply, Decimal(booked) if is_plausible_usd(booked) else None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def put(self, payload: dict, reply: Reply, booked: Decimal | None) -> None:
        """Keep a reply; a cache that cannot be written is reported once."""
        import threading

        path = self._path(payload)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            temporary = f"{path}.{os.getpid()}-{threading.get_ident()}.tmp"
            with open(temporary, "w", encoding="utf-8") as f:
                stored = to_json(
                    {"body": reply.body, "booked": booked}, ensure_ascii=True
                )
                f.write(redact(stored))
            os.replace(temporary, path)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                warn(
                    f"cannot write the response cache in {self.folder}: {exc.strerror}"
                )

    def _path(self, payload: dict) -> str:
        import hashlib

        key = {name: payload[name] for name in ("model", "messages", "max_tokens")}
        text = json.dumps(key, ensure_ascii=False, sort_keys=True)
        digest = hashlib.sha256(text.encode(errors="surrogatepass")).hexdigest()
        return os.path.join(self.folder, digest[:2], f"{digest}.json")


def default_cache_dir() -> str:
    """$XDG_CACHE_HOME/track_usage, else ~/.cache/track_usage."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return os.path.join(base, "track_usage")


def compare_models(
    jobs: list[Job], models: list[str], settings: Settings, prices: dict[str, Price]
) -> int:
    """Estimate every prompt on several models: a table, cheapest first."""
    tokenizers = Tokenizers()
    for model in models:
        tokenizers.prefetch(model)
    rows = [compare_row(jobs, model, settings, prices, tokenizers) for model in models]
    rows.sort(
        key=lambda row: (
            row["cost_min"] is None,
            row["cost_min"] or 0,
            row["cost_max"] or 0,
        )
    )
    if settings.json_out:
        for row in rows:
            print(to_json(row))
        return EXIT_OK
    shown = [
        {
            "model": row["model"],
            "prompt tokens": ("~" if row["tokenizer_approx"] else "")
            + f"{row['prompt_tokens']:,}",
            "cost, prompt only": money(row["cost_min"])
            if row["cost_min"] is not None
            else "no price",
            f"with up to {settings.max_tokens:,} output tokens": money(row["cost_max"])
            if row["cost_max"] is not None
            else "no price",
        }
        for row in rows
    ]
    if len(jobs) > 1:
        print(f"All {len(jobs):,} prompts together:")
    print("\n".join(render_table(shown, list(shown[0]))))
    if any(row["tokenizer_approx"] for row in rows):
        print("~ counted with a stand-in tokenizer: an estimate")
    return EXIT_OK


def compare_row(
    jobs: list[Job],
    model: str,
    settings: Settings,
    prices: dict[str, Price],
    tokenizers: Tokenizers,
) -> dict:
    """One model's estimate for all the prompts."""
    counter = tokenizers.counter(model)
    counts = [
        counter.count_chat(build_messages(job.prompt, settings.system)) for job in jobs
    ]
    price = find_price(prices, model)
    low = high = None
    if price is not None:
        low = sum((call_cost(price, Usage(n, 0)) for n in counts), Decimal(0))
        high = sum(
            (
                call_cost(price, Usage(n, job.max_tokens))
                for n, job in zip(counts, jobs, strict=True)
            ),
            Decimal(0),
        )
    return {
        "model": model,
        "prompt_tokens": sum(counts),
        "tokenizer": counter.tokenizer,
        "tokenizer_approx": counter.approx,
        "cost_min": low,
        "cost_max": high,
    }


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
    from decimal import InvalidOperation

    try:
        value = Decimal(text.strip().removesuffix("%"))
    except InvalidOperation:
        value = Decimal(-1)
    if not (value.is_finite() and 0 < value <= 100):
        raise argparse.ArgumentTypeError(
            f"expected a percentage from 1 to 100, got {text!r}"
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


def subcommand_parser(name: str, about: str, *examples: str) -> ArgumentParser:
    """A subcommand's parser, whose --help ends with a few real invocations."""
    import textwrap

    shown = "\n".join(f"  track_usage.py {name} {example}" for example in examples)
    return ArgumentParser(
        prog=f"track_usage.py {name}",
        description=f"{textwrap.fill(about, 78)}\n\nexamples:\n{shown}",
        formatter_class=HelpFormatter,
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
        choices=("text", "jsonl", "whole"),
        help="text: a prompt per line; jsonl: an object per line; whole: the"
        " whole input is one prompt (default: jsonl for .jsonl files or when the"
        ' first line is an object with "prompt", else text)',
    )
    add_call_options(parser)
    add_spending_options(parser)
    add_output_options(parser)
    return parser


def add_call_options(parser: argparse.ArgumentParser) -> None:
    """How each call is made: model, size, timing, retries."""
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
        help="the longest wait for the server: to connect, and between two pieces"
        f" of an answer (default: {DEFAULT_TIMEOUT_S:g})",
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


def add_spending_options(parser: argparse.ArgumentParser) -> None:
    """What to skip, rewrite, cache or refuse, to spend less."""
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip prompts the log already holds an ok record of, for the same model",
    )
    parser.add_argument(
        "--optimize",
        action="store_true",
        help="send each prompt as the optimize subcommand rewrites it (spaces,"
        " repeated lines, JSON layout; code blocks untouched)",
    )
    parser.add_argument(
        "--cache",
        action="store_true",
        help="answer a request seen before from a local cache, for $0",
    )
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where --cache keeps replies (default: $XDG_CACHE_HOME/track_usage,"
        " else ~/.cache/track_usage)",
    )
    parser.add_argument(
        "--compare",
        type=model_list,
        metavar="MODEL,MODEL,...",
        help="estimate the prompts on each model, cheapest first (sends nothing)",
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


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """What is logged and printed."""
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


def model_list(text: str) -> list[str]:
    """Parse a comma-separated list of model ids (for argparse)."""
    models = [model.strip() for model in text.split(",") if model.strip()]
    if not models:
        raise argparse.ArgumentTypeError("expected model ids separated by commas")
    return models


def dimensions(text: str) -> tuple[str, ...]:
    """Parse --by: day, week, month and/or model, comma-separated (for argparse)."""
    names = tuple(name.strip() for name in text.split(","))
    unknown = [name for name in names if name not in REPORT_DIMENSIONS]
    if unknown or len(set(names)) < len(names):
        raise argparse.ArgumentTypeError(
            f"expected some of {', '.join(REPORT_DIMENSIONS)}, each once, got {text!r}"
        )
    return names


def iso_date(text: str) -> str:
    """Parse a date such as 2026-12-04 (for argparse)."""
    from datetime import date

    try:
        return str(date.fromisoformat(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date like 2026-12-04, got {text!r}"
        ) from None


def build_report_parser() -> argparse.ArgumentParser:
    """track_usage.py report: totals from the log."""
    parser = subcommand_parser(
        "report",
        "Add up the log: calls, tokens and booked cost, grouped and"
        " filtered. Calls with no known cost and failed calls are shown"
        " apart, and the local token estimates are compared with the billed"
        " counts.",
        "--by day,model --since 2026-12-01",
        "--by month --format csv > usage.csv",
    )
    parser.add_argument(
        "--by",
        type=dimensions,
        default=("day",),
        metavar="DIM[,DIM]",
        help="group by day, week, month and/or model (default: day)",
    )
    parser.add_argument(
        "--since", type=iso_date, metavar="DATE", help="first day, in --timezone"
    )
    parser.add_argument(
        "--until", type=iso_date, metavar="DATE", help="last day, in --timezone"
    )
    parser.add_argument(
        "--model", metavar="MODEL", help="only calls served by this model"
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="default: table",
    )
    parser.add_argument(
        "--timezone",
        metavar="ZONE",
        help=f"whose calendar days (default: ${ENV_TIMEZONE}, else local time)",
    )
    add_log_options(parser)
    return parser


def build_chart_parser() -> argparse.ArgumentParser:
    """track_usage.py chart: daily cost and tokens as a picture."""
    parser = subcommand_parser(
        "chart",
        "Draw daily cost stacked by model (with the daily budget as a line)"
        " and daily tokens. Needs matplotlib (requirements-optional.txt).",
        "--out usage.png --days 30",
        "--out usage.html --daily-budget 2",
    )
    parser.add_argument(
        "--out",
        default="usage.png",
        metavar="PATH",
        help="a .png file, or a .html page with the chart and the daily table"
        " (default: usage.png)",
    )
    parser.add_argument(
        "--days",
        type=positive_int,
        default=30,
        metavar="N",
        help="how many days to draw, back from --until (default: 30)",
    )
    parser.add_argument(
        "--until",
        type=iso_date,
        metavar="DATE",
        help="the last day to draw, in --timezone (default: today)",
    )
    add_budget_options(parser)
    add_log_options(parser)
    return parser


def build_pricing_parser() -> argparse.ArgumentParser:
    """track_usage.py pricing: show or update the price table."""
    parser = subcommand_parser(
        "pricing",
        "Show pricing.json, or rewrite it from OpenRouter's model list"
        " ({OPENROUTER_BASE_URL}/models): per-token prices become exact"
        " per-1K prices, entries the list lacks are kept, and the changes"
        " are listed.",
        "show openai/gpt-4o openai/gpt-4o-mini",
        "update",
    )
    parser.add_argument(
        "action", nargs="?", choices=("show", "update"), help="what to do"
    )
    parser.add_argument(
        "models", nargs="*", metavar="MODEL", help="models to show (default: all)"
    )
    parser.add_argument(
        "--pricing",
        metavar="PATH",
        help="the price table (default: pricing.json beside this script)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"for the download (default: {DEFAULT_TIMEOUT_S:g})",
    )
    return parser


def build_optimize_parser() -> argparse.ArgumentParser:
    """track_usage.py optimize: preview the --optimize rewrite."""
    parser = subcommand_parser(
        "optimize",
        "Print a prompt as --optimize would send it, and the tokens and"
        " dollars that saves. Reads the whole of stdin as one prompt when no"
        " prompt is given.",
        '"Summarise   this:   ..."',
        "-m openai/gpt-4o < prompt.txt",
    )
    parser.add_argument("prompt", nargs="?", help="the prompt (default: stdin)")
    parser.add_argument(
        "-m",
        "--model",
        metavar="MODEL",
        help=f"whose tokenizer and price (default: ${ENV_MODEL}, else {DEFAULT_MODEL})",
    )
    parser.add_argument(
        "--pricing",
        metavar="PATH",
        help="the price table (default: pricing.json beside this script)",
    )
    return parser


def build_budget_parser() -> argparse.ArgumentParser:
    """track_usage.py budget: today's spend against the daily budget."""
    parser = subcommand_parser(
        "budget",
        "Show today's spend, read from the log, against the daily budget.",
        "--daily-budget 5",
        "--timezone America/New_York --json",
    )
    add_budget_options(parser)
    add_log_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


SUBCOMMANDS = {
    "budget": (build_budget_parser, cmd_budget),
    "report": (build_report_parser, cmd_report),
    "chart": (build_chart_parser, cmd_chart),
    "pricing": (build_pricing_parser, cmd_pricing),
    "optimize": (build_optimize_parser, cmd_optimize),
}


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
