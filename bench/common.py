"""Helpers for the benchmarks: a loopback server process and timing."""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "track_usage.py"
FAKE_SERVER = ROOT / "tests" / "fake_openrouter.py"
SHARED_CACHE = ROOT.parent / "shared" / "tiktoken-cache"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def loopback_server(delay_s: float) -> Iterator[str]:
    """Run the asyncio stand-in for OpenRouter in its own process."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(FAKE_SERVER),
            "--port",
            str(port),
            "--delay",
            str(delay_s),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        proc.stdout.readline()  # "serving ..." once it listens
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        proc.terminate()
        proc.wait()


def bench_env(base_url: str, **extra: str) -> dict[str, str]:
    """The environment for a timed run: loopback only, encodings cached."""
    env = dict(os.environ)
    env.update(
        OPENROUTER_BASE_URL=base_url,
        OPENROUTER_API_KEY="sk-or-v1-benchmark-not-a-key",
        NO_PROXY="127.0.0.1,localhost",
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        **extra,
    )
    if "TIKTOKEN_CACHE_DIR" not in env and SHARED_CACHE.is_dir():
        env["TIKTOKEN_CACHE_DIR"] = str(SHARED_CACHE)
    return env


def time_command(
    cmd: list[str],
    env: dict[str, str],
    stdin: bytes | None = None,
    cwd: str | None = None,
) -> float:
    """Wall-clock seconds of one run; the command must succeed."""
    start = time.perf_counter()
    subprocess.run(cmd, env=env, input=stdin, capture_output=True, check=True, cwd=cwd)
    return time.perf_counter() - start


def interleaved_medians(
    commands: dict[str, list[str]],
    env: dict[str, str],
    runs: int,
    cwd: str | None = None,
) -> dict[str, float]:
    """Time the commands in turn, `runs` times each, and return each median."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            times[name].append(time_command(cmd, env, cwd=cwd))
    return {name: statistics.median(values) for name, values in times.items()}
