"""Regenerate logs/sample.jsonl and logs/sample.csv with the tool itself.

The calls go to the loopback stand-in for OpenRouter (tests/fake_openrouter.py),
so every reply in the samples is its canned text, its token counts are the
stand-in's word counts, and each cost is computed from pricing.json: no model
was called and nothing was billed.

    python tools/make_sample_logs.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fake_openrouter import FakeOpenRouter  # noqa: E402

CALLS = [
    ("Explain quantum computing in simple terms.", "openai/gpt-4o-mini"),
    (
        'Summarise: "costs, quotes, and commas" in one line.',
        "anthropic/claude-haiku-4.5",
    ),
    ("=1+1 stays text in a spreadsheet", "openai/gpt-3.5-turbo"),
]


def main() -> None:
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


if __name__ == "__main__":
    main()
