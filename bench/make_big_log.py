"""Write a big, realistic track_usage log, for the benchmarks that read logs.

Each record has exactly the fields of track_usage.LOG_FIELDS and is encoded
by the tool's own writers (record_json for JSONL; csv_cell and csv_bytes for
CSV, after one header line). Texts are 1-2 KB of deterministic pseudo-random
prose (fixed seed) with quotes, commas, newlines and non-ASCII characters;
timestamps rise over the last 365 days up to now, the last 300 of them today
(local time); models and prices come from pricing.json and costs from
track_usage.call_cost. About 3% of the calls are unpriced (null total_cost)
and 2% failed. Records stream to disk in chunks, so memory stays flat.

    python bench/make_big_log.py [--records 1000000] [--format jsonl|csv]
                                 [--out /tmp/track_usage_bench/big_1m.jsonl]
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from common import ROOT

sys.path.insert(0, str(ROOT))
import track_usage

DATA_DIR = Path("/tmp/track_usage_bench")
DEFAULT_OUT = DATA_DIR / "big_1m.jsonl"
SEED = 20261204
TODAY_RECORDS = 300
CHUNK = 2000  # records encoded and written at a time
CHECK_EVERY = 1000  # compare a spliced JSONL line with record_json's whole output
POOL = 500  # texts in each pool (prompts, replies)
ROTATIONS = 4  # variants of each text

# (requested model, served model, provider, weight); the last two have no
# entry in pricing.json, so their calls are unpriced (about 3% together).
MODELS = (
    ("openai/gpt-4o-mini", "openai/gpt-4o-mini-2024-07-18", "OpenAI", 30),
    ("openai/gpt-4o", "openai/gpt-4o-2024-08-06", "Azure", 8),
    ("openai/gpt-4.1-mini", "openai/gpt-4.1-mini-2025-04-14", "OpenAI", 8),
    ("openai/gpt-5-mini", "openai/gpt-5-mini-2025-08-07", "OpenAI", 6),
    ("anthropic/claude-haiku-4.5", "anthropic/claude-haiku-4.5", "Anthropic", 10),
    ("anthropic/claude-sonnet-4.6", "anthropic/claude-sonnet-4.6", "Anthropic", 6),
    ("google/gemini-2.5-flash", "google/gemini-2.5-flash", "Google AI Studio", 10),
    ("meta-llama/llama-3.3-70b-instruct", None, "DeepInfra", 6),
    ("deepseek/deepseek-chat-v3.1", None, "DeepSeek", 5),
    ("mistralai/mistral-small-3.2-24b-instruct", None, "Mistral", 4),
    ("openai/gpt-oss-20b:free", None, "Chutes", 4),
    ("x-ai/grok-4-fast", None, "xAI", 1.7),
    ("qwen/qwen3-235b-a22b-2507", None, "Alibaba", 1.3),
)
REASONING_MODELS = ("openai/gpt-5-mini",)
ERRORS = (
    "OpenRouter error 429: Rate limit exceeded: free-models-per-min."
    " (rate limited; wait and try again)",
    "OpenRouter error 502: Provider returned error (trouble upstream; try again later)",
    "no answer from https://openrouter.ai/api/v1/chat/completions within 60 s"
    " (raise --timeout, or try again)",
    "OpenRouter error 400: This endpoint's maximum context length is 128000"
    " tokens (check the model id and the parameters)",
)
SYSTEMS = (
    "You are a helpful assistant.",
    "Answer in French.",
    'Reply as JSON: {"answer": "...", "confidence": 0.0}',
    "Be terse; no more than three sentences, please.",
)
VOCABULARY = (
    "the of and to in a is that for it as was with be by on not he this are or"
    " his from at which but have an they you were her she there would their we"
    " him been has when who will more no if out so said what up its about into"
    " than them can only other new some could time these two may then do first"
    " any my now such like our over man me even most made after also did many"
    " token cost budget model prompt reply latency cache request invoice ledger"
    " naïve café résumé Größe Straße façade coöperate jalapeño smörgåsbord"
    " 東京 日本語 数据 привет мир Ελλάδα مرحبا 🚀 ✓ €42 £7 ±3 °C"
)
WORDS = VOCABULARY.split()
PREFIXES = (
    "Summarise the following text: ",
    "Translate into German: ",
    "Explain, step by step, ",
    "Q: ",
    "Rewrite this more formally:\n",
    '"Quoted" input, with commas, follows: ',
    "=SUM(A1:A3) looks like a formula, but ",
    "- a bullet that starts the prompt\n",
)


def sentence(rng: random.Random) -> str:
    """One sentence of random words, now and then with a quote or a comma."""
    words = rng.choices(WORDS, k=rng.randint(6, 18))
    if rng.random() < 0.3:
        at = rng.randrange(len(words))
        words[at] = f'"{words[at]}"'
    if rng.random() < 0.5:
        words[rng.randrange(len(words))] += ","
    return " ".join(words).capitalize() + rng.choice(".!?.")


def text_block(rng: random.Random) -> str:
    """1-2 KB of prose in paragraphs."""
    size = rng.randint(1024, 2048)
    parts: list[str] = []
    length = 0
    while length < size:
        piece = sentence(rng) + rng.choice((" ", " ", " ", "\n", "\n\n"))
        parts.append(piece)
        length += len(piece.encode())
    return "".join(parts).rstrip()


def json_value(text: str) -> str:
    """A text as record_json writes it: a JSON string, line breaks escaped."""
    return track_usage.record_json({"v": text})[len('{"v": ') : -1]


class Texts:
    """A pool of 1-2 KB texts, each rotated a few ways, and their encodings.

    Encoding a text of this size as record_json does takes about 0.2 ms (most
    of it in str.translate): over a million records, most of the run. The
    pool encodes each variant once, and records reuse the encodings.
    """

    def __init__(self, rng: random.Random) -> None:
        self.variants: list[tuple[str, str]] = []
        for _ in range(POOL):
            text = text_block(rng)
            spaces = [at for at, char in enumerate(text) if char == " "]
            for cut in rng.sample(spaces, ROTATIONS):
                rotated = text[cut + 1 :] + " " + text[:cut]
                self.variants.append((rotated, json_value(rotated)))

    def pick(self, rng: random.Random) -> tuple[str, str]:
        """A text and its JSON encoding."""
        return rng.choice(self.variants)


def timestamps(records: int, now: datetime) -> Iterator[datetime]:
    """Rising moments over the last 365 days; the last few are today."""
    rng = random.Random(SEED + 1)
    midnight = now.astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    today = min(TODAY_RECORDS, records)
    spans = (
        (now - timedelta(days=365), midnight, records - today),
        (midnight, now - timedelta(seconds=1), today),
    )
    for start, end, count in spans:
        step = (end - start) / max(count, 1)
        for i in range(count):
            yield (start + step * (i + 0.9 * rng.random())).astimezone(timezone.utc)


def make_records(records: int) -> Iterator[tuple[dict, str, str]]:
    """The log's records, oldest first, each with its prompt and reply as JSON."""
    rng = random.Random(SEED)
    prices = track_usage.load_pricing(str(ROOT / "pricing.json"))
    prompts, replies = Texts(rng), Texts(rng)
    prefixes = [(prefix, json_value(prefix)) for prefix in PREFIXES]
    weights = [model[3] for model in MODELS]
    now = datetime.now(timezone.utc)
    for number, started in enumerate(timestamps(records, now), 1):
        model, served, provider, _ = rng.choices(MODELS, weights)[0]
        served = served or model
        system = rng.choice(SYSTEMS) if rng.random() < 0.2 else None
        prefix, prefix_json = rng.choice(prefixes)
        body, body_json = prompts.pick(rng)
        prompt = prefix + body
        messages = track_usage.build_messages(prompt, system)
        tokenizer, exact = track_usage.encoding_for_model(model)
        from_batch = rng.random() < 0.6
        record = dict.fromkeys(track_usage.LOG_FIELDS)
        record.update(
            schema_version=track_usage.SCHEMA_VERSION,
            timestamp=started.isoformat(timespec="milliseconds"),
            input_line=rng.randint(1, 500) if from_batch else None,
            input_id=f"item-{number}" if from_batch and rng.random() < 0.3 else None,
            model=model,
            system=system,
            prompt=prompt,
            prompt_tokens_estimated=(len(prompt) + len(system or "")) // 4 + 7,
            tokenizer=tokenizer,
            tokenizer_approx=not exact,
            latency_ms=rng.randint(300, 20_000),
            attempts=1 if rng.random() < 0.95 else rng.randint(2, 4),
            prompt_hash=track_usage.prompt_hash(messages),
        )
        reply, reply_json = replies.pick(rng)
        if rng.random() < 0.02:
            record.update(status="error", error=rng.choice(ERRORS))
            reply_json = "null"
        else:
            add_reply(record, rng, reply, served, provider, prices)
        yield record, prefix_json[:-1] + body_json[1:], reply_json


def add_reply(
    record: dict,
    rng: random.Random,
    reply: str,
    served: str,
    provider: str,
    prices: dict,
) -> None:
    """Fill in what a successful call logs: counts, prices and costs."""
    estimate = record["prompt_tokens_estimated"]
    exact = not record["tokenizer_approx"]
    prompt_tokens = estimate if exact else round(estimate * rng.uniform(0.85, 1.2))
    completion_tokens = len(reply) // 4 + rng.randint(-5, 5)
    cached = prompt_tokens // 2 if rng.random() < 0.15 else 0
    written = 0
    if served.startswith("anthropic/") and not cached and rng.random() < 0.1:
        written = prompt_tokens // 3
    reasoning = 0
    if record["model"] in REASONING_MODELS:
        reasoning = rng.randint(0, completion_tokens // 2)
    record.update(
        status="ok",
        request_id=f"gen-{record['prompt_hash'][:10]}-{rng.getrandbits(40):010x}",
        model_used=served,
        provider=provider,
        response=reply,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
        cached_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=reasoning,
        token_source="api",
        completion_tokens_estimated=len(reply) // 4,
        finish_reason="stop" if rng.random() < 0.97 else "length",
    )
    price = track_usage.find_price(prices, record["model"], served)
    if price is None:
        return  # unpriced: every cost stays null
    usage = track_usage.Usage(prompt_tokens, completion_tokens, cached, written)
    cost = track_usage.call_cost(price, usage)
    record.update(
        pricing_model=price.model,
        price_prompt_per_1k=price.prompt,
        price_completion_per_1k=price.completion,
        pricing_cost=cost,
        total_cost=cost,
        cost_source="pricing",
    )
    if rng.random() < 0.4:  # OpenRouter's own figure, booked when present
        reported = cost * Decimal(rng.choice(("1", "1", "1.05", "0.9")))
        record.update(
            reported_cost=reported,
            is_byok=False,
            total_cost=reported,
            cost_source="reported",
        )


def jsonl_line(record: dict, prompt_json: str, reply_json: str) -> str:
    """record_json(record), with the texts' encodings made beforehand."""
    line = track_usage.record_json({**record, "prompt": None, "response": None})
    texts = f'"prompt": {prompt_json}, "response": {reply_json}'
    return line.replace('"prompt": null, "response": null', texts, 1)


def csv_row(record: dict) -> list[str]:
    """A record as the tool's CSV row."""
    return [track_usage.csv_cell(record[name]) for name in track_usage.LOG_FIELDS]


def encoded(records: int, log_format: str) -> Iterator[str | list[str]]:
    """Each record as the tool appends it: a JSONL line, or a CSV row."""
    made = make_records(records)
    for number, (record, prompt_json, reply_json) in enumerate(made, 1):
        if log_format == "csv":
            yield csv_row(record)
            continue
        line = jsonl_line(record, prompt_json, reply_json)
        if number % CHECK_EVERY == 1 and line != track_usage.record_json(record):
            sys.exit(f"record {number}: the reused encodings changed the line")
        yield line + "\n"


def write_log(path: Path, records: int, log_format: str) -> None:
    """Write the log, chunk by chunk, and report its size and the time taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    items = encoded(records, log_format)
    with open(path, "wb") as f:
        if log_format == "csv":
            f.write(track_usage.csv_bytes([track_usage.LOG_FIELDS]))
        while chunk := list(itertools.islice(items, CHUNK)):
            if log_format == "csv":
                f.write(track_usage.csv_bytes(chunk))
            else:
                f.write("".join(chunk).encode())
        size = f.tell()
    seconds = time.perf_counter() - start
    print(
        f"wrote {records:,} records ({size / 1e9:.2f} GB, {log_format}) to {path}"
        f" in {seconds:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    args = parser.parse_args()
    write_log(args.out, args.records, args.format)


if __name__ == "__main__":
    main()
