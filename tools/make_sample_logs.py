"""Regenerate the sample logs in logs/ and the README's chart.

logs/sample.jsonl and logs/sample.csv are three calls made by the tool itself
against the loopback stand-in for OpenRouter (tests/fake_openrouter.py): every
reply is its canned text, its token counts are the stand-in's word counts, and
each cost is computed from pricing.json. No model was called, nothing billed.

logs/sample_month.jsonl is synthetic: thirty days of plausible calls built with
the tool's own record and cost functions (seeded, so it is the same each time),
for the report and chart examples. docs/chart.png is drawn from it.

    python tools/make_sample_logs.py
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import track_usage as tu  # noqa: E402
from fake_openrouter import FakeOpenRouter  # noqa: E402

CALLS = [
    ("Explain quantum computing in simple terms.", "openai/gpt-4o-mini"),
    (
        'Summarise: "costs, quotes, and commas" in one line.',
        "anthropic/claude-haiku-4.5",
    ),
    ("=1+1 stays text in a spreadsheet", "openai/gpt-3.5-turbo"),
]
MONTH_MODELS = (
    "openai/gpt-4o-mini",
    "openai/gpt-4o",
    "anthropic/claude-haiku-4.5",
    "anthropic/claude-sonnet-4.6",
    "google/gemini-2.5-flash",
    "deepseek/deepseek-v3.2",
    "vendor/in-house-model",  # no price: shows how unpriced calls appear
)


def sample_calls() -> None:
    with FakeOpenRouter() as server:
        env = dict(
            os.environ,
            OPENROUTER_BASE_URL=server.base_url,
            OPENROUTER_API_KEY="sk-or-v1-loopback-sample-not-a-key",
            NO_PROXY="127.0.0.1,localhost",
        )
        for log in ("logs/sample.jsonl", "logs/sample.csv"):
            (ROOT / log).unlink(missing_ok=True)
            for prompt, model in CALLS:
                subprocess.run(
                    [
                        sys.executable,
                        "track_usage.py",
                        prompt,
                        "-m",
                        model,
                        "--log-file",
                        log,
                    ],
                    cwd=ROOT,
                    env=env,
                    check=True,
                    capture_output=True,
                )
            print(f"wrote {log}")


def synthetic_month(path: Path, today: datetime) -> None:
    rng = random.Random(2026)
    prices = tu.load_pricing(tu.DEFAULT_PRICING_PATH)
    lines = []
    for days_ago in range(29, -1, -1):
        day = today - timedelta(days=days_ago)
        for _ in range(rng.randint(0, 14) if days_ago % 9 else 0):
            lines.append(tu.record_json(synthetic_call(day, rng, prices)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)} ({len(lines)} synthetic records)")


def synthetic_call(day: datetime, rng: random.Random, prices: dict) -> dict:
    model = rng.choice(MONTH_MODELS)
    started = day.replace(hour=rng.randint(7, 22), minute=rng.randint(0, 59))
    job = tu.Job(f"synthetic prompt {rng.randint(1, 999)}", model, 1024)
    record = tu.new_record(job, tu.build_messages(job.prompt, None), started)
    usage = tu.Usage(rng.randint(200, 60_000), rng.randint(50, 2_000))
    failed = rng.random() < 0.03
    price = tu.find_price(prices, model)
    record.update(
        status="error" if failed else "ok",
        error="OpenRouter error 502: synthetic failure" if failed else None,
        model_used=model,
        cache_hit=False,
        prompt_tokens=None if failed else usage.prompt_tokens,
        completion_tokens=None if failed else usage.completion_tokens,
        token_source=None if failed else "api",
        prompt_tokens_estimated=round(usage.prompt_tokens * rng.uniform(0.85, 1.1)),
        completion_tokens_estimated=round(
            usage.completion_tokens * rng.uniform(0.9, 1.2)
        ),
        total_cost=None if failed or price is None else tu.call_cost(price, usage),
        cost_source=None if failed or price is None else "pricing",
        response=None if failed else "synthetic reply",
    )
    return record


def chart(month: Path, last_day: str) -> None:
    out = ROOT / "docs" / "chart.png"
    out.parent.mkdir(exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "track_usage.py",
            "chart",
            "--log-file",
            str(month),
            "--out",
            str(out),
            "--days",
            "30",
            "--daily-budget",
            "0.6",
            "--until",
            last_day,
            "--timezone",
            "UTC",
        ],
        cwd=ROOT,
        check=True,
    )


def main() -> None:
    import argparse

    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    sample_calls()
    month = ROOT / "logs" / "sample_month.jsonl"
    today = datetime.now(timezone.utc)
    synthetic_month(month, today)
    chart(month, str(today.date()))


if __name__ == "__main__":
    main()
