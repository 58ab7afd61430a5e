"""The floor for a batch: N POSTs from T threads with plain requests.

Used by bench_batch.py. Each thread keeps one requests.Session, and every
request carries the same payload (what track_usage.py sends for a short
prompt) to $OPENROUTER_BASE_URL/chat/completions. Exits with an error when
an answer is not a 200 with usage.

    python bench/bare_client.py [--requests 200] [--workers 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import requests

PAYLOAD = {
    "model": "openai/gpt-4o-mini",
    "messages": [
        {"role": "user", "content": "Explain quantum computing in simple terms."}
    ],
    "max_tokens": 1024,
    "usage": {"include": True},
}

local = threading.local()


def post(url: str, headers: dict[str, str]) -> dict:
    """One call on this thread's session; returns the usage it reports."""
    session = getattr(local, "session", None)
    if session is None:
        session = local.session = requests.Session()
    response = session.post(url, json=PAYLOAD, headers=headers, timeout=60)
    response.raise_for_status()
    return response.json()["usage"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()

    url = os.environ["OPENROUTER_BASE_URL"].rstrip("/") + "/chat/completions"
    headers = {"Authorization": "Bearer " + os.environ["OPENROUTER_API_KEY"]}
    with ThreadPoolExecutor(args.workers) as pool:
        usages = list(pool.map(lambda _: post(url, headers), range(args.requests)))
    tokens = sum(usage["total_tokens"] for usage in usages)
    print(f"{len(usages)} calls, {tokens:,} tokens", file=sys.stderr)


if __name__ == "__main__":
    main()
