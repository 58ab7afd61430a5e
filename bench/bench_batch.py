"""Batches through track_usage.py: concurrency, and the daily budget on a big log.

a. 200 prompts at --concurrency 16 (track_usage.py -i FILE, a fresh process)
   against a loopback server answering after 200 ms, versus bare_client.py
   (16 threads, one requests.Session each, the same payload) and versus the
   ideal: ceil(200 / 16) rounds of 200 ms plus one call's start-up, which is
   the median of one `track_usage.py PROMPT` minus 200 ms.
b. The daily budget on a log of 1,000,000 records versus an empty log. The
   big log is made once by make_big_log.py at /tmp/track_usage_bench/ (again
   when it holds no record from today) and copied for each run of this
   script, since the runs append to it. Measured: (i) the first budget check,
   which builds the state file <log>.budget.json; (ii) with the state built,
   40 prompts at --concurrency 1 and single prompts under --daily-budget,
   each against a fresh empty log too; (iii) the peak RSS of `track_usage.py
   budget` (os.wait4, in a small launcher process). The budget's figures are
   checked against a sum of today's records read from the end of the log.

Every run is a fresh process; runs are interleaved and medians printed.

    python bench/bench_batch.py [--runs 5] [--big-log PATH] [--records N]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from make_big_log import DATA_DIR, DEFAULT_OUT, write_log

from common import SCRIPT, bench_env, interleaved_medians, loopback_server

BARE = Path(__file__).with_name("bare_client.py")
PROMPT = "Explain quantum computing in simple terms."
DELAY_S = 0.2
BATCH, CONCURRENCY = 200, 16
BUDGET_BATCH = 40
DAILY_BUDGET = "1000"
FIRST_CHECKS = 3  # first budget checks on the big log, each from no state
SINGLES_PER_RUN = 4  # single prompts per log in each run: they vary more


# Runs a command and writes its wall-clock seconds and peak RSS (KiB) to a
# file. A child's ru_maxrss starts at its parent's RSS when it is forked, so
# the command is started from this small process rather than from the bench.
PROBE = """\
import os, sys, time
start = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{time.perf_counter() - start} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


class Run:
    """One finished command: wall-clock seconds, peak RSS and stdout."""

    def __init__(self, seconds: float, max_rss_kib: int, stdout: bytes) -> None:
        self.seconds = seconds
        self.max_rss_mib = max_rss_kib / 1024
        self.stdout = stdout


def measure(cmd: list[str], env: dict[str, str]) -> Run:
    """Run a command (an absolute path first) to the end; it must succeed."""
    with tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp, "figures")
        probe = [sys.executable, "-I", "-S", "-c", PROBE, str(figures), *cmd]
        done = subprocess.run(probe, env=env, capture_output=True)
        if done.returncode != 0:
            sys.exit(
                f"{' '.join(cmd)} exited with {done.returncode}:\n"
                + done.stderr.decode(errors="replace")[-3000:]
            )
        seconds, max_rss_kib = figures.read_text().split()
    return Run(float(seconds), int(max_rss_kib), done.stdout)


def median(runs: list[Run], attribute: str = "seconds") -> float:
    return statistics.median(getattr(run, attribute) for run in runs)


def write_prompts(path: Path, count: int) -> Path:
    path.write_text(
        "".join(
            f"Prompt {n}: {PROMPT} Keep it to {n % 7 + 2} lines.\n"
            for n in range(count)
        ),
        encoding="utf-8",
    )
    return path


def local_midnight() -> datetime:
    return (
        datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    )


def todays_records(log: Path) -> list[dict]:
    """Today's records, read from the end of the log, where they all are."""
    size = log.stat().st_size
    midnight = local_midnight()
    tail = 1 << 20
    while True:
        with open(log, "rb") as f:
            f.seek(max(0, size - tail))
            lines = f.read().splitlines()
        if size > tail:
            lines = lines[1:]  # most likely cut short
        records = [json.loads(line, parse_float=Decimal) for line in lines if line]
        started = [datetime.fromisoformat(r["timestamp"]) for r in records]
        if size <= tail or not started or started[0] < midnight:
            return [r for r, at in zip(records, started, strict=True) if at >= midnight]
        tail *= 4


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 24), b""))


def ensure_big_log(path: Path, records: int) -> None:
    """Make the big log unless it exists and ends with records from today."""
    if path.exists() and todays_records(path):
        print(f"big log: {path} ({path.stat().st_size / 1e9:.2f} GB)")
        return
    print(f"making the big log {path} (a few minutes) ...", flush=True)
    write_log(path, records, "jsonl")


def bench_concurrency(base_url: str, tmp: Path, runs: int) -> dict[str, float]:
    """Part a: medians of the tool's batch, the bare client and one call."""
    prompts = write_prompts(tmp / "prompts-200.txt", BATCH)
    env = bench_env(base_url, TRACK_USAGE_LOG_FILE=str(tmp / "batch.jsonl"))
    python = sys.executable
    return interleaved_medians(
        {
            "tool": [python, str(SCRIPT), "-i", str(prompts), "--concurrency", "16"],
            "bare": [python, str(BARE), "--requests", str(BATCH), "--workers", "16"],
            "single": [python, str(SCRIPT), PROMPT],
        },
        env,
        runs,
    )


def budget_cmd(log: Path) -> list[str]:
    return [
        sys.executable,
        str(SCRIPT),
        "budget",
        "--log-file",
        str(log),
        "--daily-budget",
        DAILY_BUDGET,
        "--json",
    ]


def send_cmd(log: Path, *prompt_args: str) -> list[str]:
    return [
        sys.executable,
        str(SCRIPT),
        *prompt_args,
        "--daily-budget",
        DAILY_BUDGET,
        "--log-file",
        str(log),
    ]


def check_budget_figures(log: Path, run: Run) -> str:
    """Compare `budget --json` with a sum of today's records."""
    shown = json.loads(run.stdout, parse_float=Decimal)
    records = todays_records(log)
    spent = sum((r["total_cost"] for r in records if r["total_cost"]), Decimal(0))
    if shown["spent"] == spent and shown["calls"] == len(records):
        return f"agree with the log: ${spent} in {len(records)} calls today"
    return (
        f"MISMATCH: budget says ${shown['spent']} in {shown['calls']} calls;"
        f" the log's records from today add up to ${spent} in {len(records)}"
    )


def bench_budget(base_url: str, source: Path, tmp: Path, runs: int) -> dict:
    """Part b: the first check, per-call overhead and peak RSS."""
    env = bench_env(base_url)
    big = tmp / "big.jsonl"
    start = time.perf_counter()
    shutil.copyfile(source, big)
    print(f"copied the big log in {time.perf_counter() - start:.1f} s", flush=True)
    state = Path(f"{big}.budget.json")
    figures: dict = {"size_gb": big.stat().st_size / 1e9, "records": count_lines(big)}

    first = []
    for _ in range(FIRST_CHECKS):
        state.unlink(missing_ok=True)
        first.append(measure(budget_cmd(big), env))
    figures["first"] = first
    figures["check"] = check_budget_figures(big, first[-1])

    empty = tmp / "empty.jsonl"
    empty.touch()
    checks: dict[str, list[Run]] = {"big": [], "empty": []}
    for _ in range(runs * 2):
        checks["big"].append(measure(budget_cmd(big), env))
        checks["empty"].append(measure(budget_cmd(empty), env))
    figures["checks"] = checks

    prompts = write_prompts(tmp / "prompts-40.txt", BUDGET_BATCH)
    batch_args = ("-i", str(prompts), "--concurrency", "1")
    batches: dict[str, list[Run]] = {"big": [], "empty": []}
    singles: dict[str, list[Run]] = {"big": [], "empty": []}
    for n in range(runs):
        batches["big"].append(measure(send_cmd(big, *batch_args), env))
        fresh = tmp / f"empty-batch-{n}.jsonl"
        batches["empty"].append(measure(send_cmd(fresh, *batch_args), env))
        for m in range(SINGLES_PER_RUN):
            singles["big"].append(measure(send_cmd(big, PROMPT), env))
            fresh = tmp / f"empty-single-{n}-{m}.jsonl"
            singles["empty"].append(measure(send_cmd(fresh, PROMPT), env))
    figures["batches"], figures["singles"] = batches, singles
    figures["after"] = check_budget_figures(big, measure(budget_cmd(big), env))
    return figures


def report_concurrency(medians: dict[str, float], runs: int) -> None:
    start_up = medians["single"] - DELAY_S
    ideal = math.ceil(BATCH / CONCURRENCY) * DELAY_S + start_up
    rounds = math.ceil(BATCH / CONCURRENCY)
    print(
        f"\na. {BATCH} prompts at --concurrency {CONCURRENCY}, server answering"
        f" after {DELAY_S * 1000:.0f} ms (median of {runs} runs each)"
    )
    rows = (
        ("track_usage.py -i prompts.txt", medians["tool"]),
        ("bare requests client", medians["bare"]),
        ("one call: track_usage.py PROMPT", medians["single"]),
        (f"ideal: {rounds} x 200 ms + start-up {start_up * 1000:.0f} ms", ideal),
    )
    for name, seconds in rows:
        print(f"  {name:44s} {seconds * 1000:8.1f} ms")
    print(
        f"  {'ratio tool / bare':44s} {medians['tool'] / medians['bare']:8.3f}"
        "    (target: at most 1.15)"
    )
    print(
        f"  {'ratio tool / ideal':44s} {medians['tool'] / ideal:8.3f}"
        "    (target: at most 1.2)"
    )


def report_budget(figures: dict, runs: int) -> None:
    first = figures["first"]
    print(
        f"\nb. daily budget: a log of {figures['records']:,} records"
        f" ({figures['size_gb']:.2f} GB, page cache warm) vs an empty log"
    )
    print(
        f"  (i) first check, building the state file: {median(first):.2f} s"
        f" (median of {len(first)}: "
        + ", ".join(f"{run.seconds:.2f}" for run in first)
        + " s)"
    )
    print(f"      the budget's figures {figures['check']}")
    checks = figures["checks"]
    print(f"  budget check, state built (median of {len(checks['big'])} each):")
    for name in ("big", "empty"):
        print(f"      {name + ' log':38s} {median(checks[name]) * 1000:8.1f} ms")

    print(f"  (ii) with the state built, --daily-budget {DAILY_BUDGET}:")
    for title, key, calls in (
        (f"{BUDGET_BATCH} prompts, --concurrency 1", "batches", BUDGET_BATCH),
        ("one prompt", "singles", 1),
    ):
        big, empty = median(figures[key]["big"]), median(figures[key]["empty"])
        count = len(figures[key]["big"])
        print(f"      {title} (median of {count} each):")
        print(f"        {'big log':36s} {big * 1000:8.1f} ms")
        print(f"        {'empty log':36s} {empty * 1000:8.1f} ms")
        print(
            f"        {'added per call':36s} {(big - empty) / calls * 1000:8.1f} ms"
            "    (target: under 50 ms)"
        )
    print(f"      after the runs, the budget's figures {figures['after']}")

    print("  (iii) peak RSS of `track_usage.py budget` (median):")
    rows = (
        ("empty log", checks["empty"]),
        ("big log, state built", checks["big"]),
        ("big log, first check", first),
    )
    for name, measured in rows:
        print(f"      {name:38s} {median(measured, 'max_rss_mib'):8.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--big-log", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--records", type=int, default=1_000_000, help="when making the big log"
    )
    args = parser.parse_args()

    ensure_big_log(args.big_log, args.records)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=DATA_DIR, prefix="run-") as tmp,
        loopback_server(DELAY_S) as base_url,
    ):
        medians = bench_concurrency(base_url, Path(tmp), args.runs)
        report_concurrency(medians, args.runs)
        figures = bench_budget(base_url, args.big_log, Path(tmp), args.runs)
        report_budget(figures, args.runs)


if __name__ == "__main__":
    main()
