"""`track_usage.py report` on a log of 1,000,000 records, against a plain loop and jq.

The log is made once by make_big_log.py (1-2 KB prompt and reply per record,
in the record layout of the current track_usage.py) at
/tmp/track_usage_bench/big_1m.jsonl (the log bench_batch.py uses), and read
once before timing so that the page cache is warm. Then, interleaved, each a
fresh process:

  tool   track_usage.py report --by day,model --format json --timezone UTC
  plain  a Python loop: json.loads every line, sum calls, prompt_tokens,
         completion_tokens and total_cost (as floats) per (day, model), where
         day = timestamp[:10] and model = model_used or model
  jq     one jq reduce expression computing the same sums

Printed: medians, the ratios tool / plain (target: at most 0.35) and
tool / jq, the peak RSS of the tool (target: under 200 MB; os.wait4 in a small
launcher process, as bench_batch.py does), whether the tool's totals agree
with the plain loop's (costs within 1e-9, counts exactly) and with jq's, and
whether the tool's costs keep every digit: the records of the log's first two
days are summed exactly with Decimal and compared with the tool's groups.

    python bench/bench_report.py [--runs 3] [--log PATH] [--records N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from bench_batch import Run, measure, median
from make_big_log import DEFAULT_OUT, track_usage, write_log

from common import SCRIPT, bench_env

DEFAULT_LOG = DEFAULT_OUT
FIRST_LINE = f'{{"schema_version": {track_usage.SCHEMA_VERSION}, "timestamp":'.encode()
JQ = "/usr/bin/jq"
TOLERANCE = Decimal("1e-9")
MAX_RSS_BYTES = 200 * 10**6
TARGET_RATIO = 0.35
EXACT_DAYS = 2  # days at the start of the log summed exactly with Decimal

# The plain loop, run as `python -c PLAIN path`. Besides the four sums it
# counts the records with a known total_cost, so that a group with none can
# be told apart from a group that cost $0.
PLAIN = """\
import json, sys
sums = {}
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        r = json.loads(line)
        key = (r["timestamp"][:10], r.get("model_used") or r["model"])
        s = sums.get(key)
        if s is None:
            s = sums[key] = [0, 0, 0, 0.0, 0]
        s[0] += 1
        s[1] += r.get("prompt_tokens") or 0
        s[2] += r.get("completion_tokens") or 0
        cost = r.get("total_cost")
        if cost is not None:
            s[3] += cost
            s[4] += 1
print(json.dumps([[*key, *s] for key, s in sums.items()]))
"""

# The same sums in one jq reduce; keys are "day model" (no model id has a space).
JQ_SUMS = (
    "reduce inputs as $r ({};"
    ' ($r.timestamp[:10] + " " + ($r.model_used // $r.model)) as $k'
    " | .[$k] |= [(.[0] // 0) + 1,"
    " (.[1] // 0) + ($r.prompt_tokens // 0),"
    " (.[2] // 0) + ($r.completion_tokens // 0),"
    " (.[3] // 0) + ($r.total_cost // 0)])"
)


def ensure_log(path: Path, records: int) -> None:
    """Make the log unless it exists; it must be in the current layout."""
    if not path.exists():
        print(f"making the log {path} (a few minutes) ...", flush=True)
        write_log(path, records, "jsonl")
    with open(path, "rb") as f:
        first = f.readline()
    if not first.startswith(FIRST_LINE):
        raise SystemExit(
            f"{path} starts with {first[:60]!r}, not {FIRST_LINE!r}: an older"
            " layout; delete it and run again to make it anew"
        )


def warm_cache(path: Path) -> tuple[int, float]:
    """Read the whole file once; return its line count and the seconds taken."""
    start = time.perf_counter()
    lines = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 24):
            lines += block.count(b"\n")
    return lines, time.perf_counter() - start


def commands(log: Path) -> dict[str, list[str]]:
    python = sys.executable
    return {
        "tool": [
            python,
            str(SCRIPT),
            "report",
            "--by",
            "day,model",
            "--log-file",
            str(log),
            "--format",
            "json",
            "--timezone",
            "UTC",
        ],
        "plain": [python, "-c", PLAIN, str(log)],
        "jq": [JQ, "-n", "-c", JQ_SUMS, str(log)],
    }


def tool_groups(run: Run) -> tuple[dict, dict]:
    """The tool's JSON output: groups by (day, model), and the total row."""
    shown = json.loads(run.stdout, parse_float=Decimal)
    groups = {(g["day"], g["model"]): g for g in shown["groups"]}
    return groups, shown["total"]


def compare_with_plain(groups: dict, plain: list) -> tuple[list[str], list]:
    """Differences between the tool's groups and the plain loop's sums; and
    the groups with unpriced calls and no record of known cost whose cost the
    tool shows as 0 (a group of failed calls only rightly costs 0)."""
    problems: list[str] = []
    sums = {(day, model): rest for day, model, *rest in plain}
    for key in sorted(set(sums) ^ set(groups)):
        where = "the plain loop" if key in sums else "the tool"
        problems.append(f"group {key} only in {where}")
    null_as_zero = []
    for key in sorted(set(sums) & set(groups)):
        calls, prompt, completion, cost, priced = sums[key]
        row = groups[key]
        counts = (row["calls"], row["prompt_tokens"], row["completion_tokens"])
        if counts != (calls, prompt, completion):
            problems.append(
                f"{key}: tool calls/prompt/completion {counts},"
                f" plain loop {(calls, prompt, completion)}"
            )
        if row["cost"] is None:
            if priced:
                problems.append(f"{key}: tool cost null, {priced} priced calls")
        elif abs(row["cost"] - Decimal(cost)) > TOLERANCE:
            problems.append(f"{key}: tool cost {row['cost']}, plain loop {cost!r}")
        elif not priced and row["unpriced_calls"]:
            null_as_zero.append(key)
    return problems, null_as_zero


def compare_with_jq(plain: list, jq_out: bytes) -> list[str]:
    """Differences between jq's sums and the plain loop's."""
    found = json.loads(jq_out)
    sums = {f"{day} {model}": rest[:4] for day, model, *rest in plain}
    problems = [f"group {key!r} only in one of them" for key in set(sums) ^ set(found)]
    for key in set(sums) & set(found):
        mine, theirs = sums[key], found[key]
        if mine[:3] != theirs[:3] or abs(mine[3] - theirs[3]) > 1e-9:
            problems.append(f"{key}: plain loop {mine}, jq {theirs}")
    return problems


def exact_head_sums(log: Path) -> dict[tuple, tuple[Decimal, float, int]]:
    """Per (day, model) of the log's first days: exact and float cost sums."""
    sums: dict[tuple, list] = defaultdict(lambda: [Decimal(0), 0.0, 0])
    days: list[str] = []
    with open(log, "rb") as f:
        for line in f:
            record = json.loads(line, parse_float=Decimal)
            day = record["timestamp"][:10]
            if day not in days:
                if len(days) == EXACT_DAYS:
                    break
                days.append(day)
            cost = record["total_cost"]
            if cost is not None:
                entry = sums[(day, record["model_used"] or record["model"])]
                entry[0] += cost
                entry[1] += float(cost)
                entry[2] += 1
    return {key: tuple(entry) for key, entry in sums.items()}


def check_digits(groups: dict, total: dict, log: Path) -> list[str]:
    """Lines saying whether the tool's costs keep every digit."""
    exact = exact_head_sums(log)
    same = sum(groups[key]["cost"] == value[0] for key, value in exact.items())
    float_off = sum(Decimal(value[1]) != value[0] for value in exact.values())
    records = sum(value[2] for value in exact.values())
    exponents = [
        key
        for key, row in groups.items()
        if row["cost"] is not None and "E" in str(row["cost"])
    ]
    costs = [row["cost"] for row in groups.values() if row["cost"] is not None]
    lines = [
        f"{same} of {len(exact)} groups of the first {EXACT_DAYS} days ({records:,}"
        " priced records) equal the exact Decimal sum of their records"
        f" (a float sum differs in {float_off} of them)",
        f"costs in exponent notation: {len(exponents)}",
        "total cost equals the sum of the groups' costs: "
        + ("yes" if sum(costs, Decimal(0)) == total["cost"] else "NO"),
    ]
    key = min(exact, key=lambda k: (exact[k][2], k))
    lines.append(
        f"e.g. {key[0]} {key[1]} ({exact[key][2]} records): exact {exact[key][0]},"
        f" tool {groups[key]['cost']}, float {exact[key][1]!r}"
    )
    if same != len(exact):
        lines.insert(0, "MISMATCH in the exact sums:")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--log", type=Path, default=DEFAULT_LOG)
    parser.add_argument(
        "--records", type=int, default=1_000_000, help="when making the log"
    )
    args = parser.parse_args()

    ensure_log(args.log, args.records)
    lines, seconds = warm_cache(args.log)
    size_gb = args.log.stat().st_size / 1e9
    print(
        f"log: {args.log} ({lines:,} records, {size_gb:.2f} GB; first line starts"
        f" {FIRST_LINE.decode()}; read once in {seconds:.1f} s to warm the cache)",
        flush=True,
    )
    # report makes no calls; the loopback-only environment makes sure of it.
    env = bench_env("http://127.0.0.1:9/api/v1")
    runs: dict[str, list[Run]] = {name: [] for name in commands(args.log)}
    for n in range(args.runs):
        for name, cmd in commands(args.log).items():
            runs[name].append(measure(cmd, env))
            print(
                f"  run {n + 1}/{args.runs} {name:5s} {runs[name][-1].seconds:7.2f} s",
                flush=True,
            )

    tool, plain, jq = (median(runs[name]) for name in ("tool", "plain", "jq"))
    print(f"\nreport --by day,model on {lines:,} records (median of {args.runs}):")
    rows = (
        ("track_usage.py report (fresh process)", "tool"),
        ("plain loop: json.loads per line", "plain"),
        ("jq reduce", "jq"),
    )
    for title, name in rows:
        print(
            f"  {title:40s} {median(runs[name]):8.2f} s"
            f"   peak RSS {median(runs[name], 'max_rss_mib'):7.1f} MiB"
        )
    print(
        f"  {'ratio tool / plain loop':40s} {tool / plain:8.3f}"
        f"     (target: at most {TARGET_RATIO})"
        + ("" if tool / plain <= TARGET_RATIO else "  MISSED")
    )
    print(f"  {'ratio tool / jq':40s} {tool / jq:8.3f}")
    worst_rss = max(run.max_rss_mib for run in runs["tool"])
    print(
        f"  {'tool peak RSS, worst of the runs':40s} {worst_rss:8.1f} MiB"
        f" ({worst_rss * 1.048576:.1f} MB; target: under 200 MB)"
        + ("" if worst_rss * 1024 * 1024 < MAX_RSS_BYTES else "  MISSED")
    )

    groups, total = tool_groups(runs["tool"][-1])
    plain_sums = json.loads(runs["plain"][-1].stdout)
    print(f"\ncorrectness ({len(groups):,} groups in the tool's output):")
    problems, null_as_zero = compare_with_plain(groups, plain_sums)
    verdict = "agree" if not problems else f"DISAGREE ({len(problems)} problems)"
    print(f"  tool vs plain loop (cost within {TOLERANCE}, counts exact): {verdict}")
    for problem in problems[:10]:
        print(f"    {problem}")
    unknown = sum(row["cost"] is None for row in groups.values())
    print(
        "  groups with unpriced calls and no record of known cost:"
        f" cost null in {unknown}, cost 0 in {len(null_as_zero)}"
        + (" (expected null: never summed as $0)" if null_as_zero else "")
    )
    for day, model in null_as_zero[:3]:
        row = groups[(day, model)]
        print(
            f"    e.g. {day} {model}: {row['calls']} calls, {row['failed']} failed,"
            f" {row['unpriced_calls']} unpriced, cost {row['cost']}"
        )
    jq_problems = compare_with_jq(plain_sums, runs["jq"][-1].stdout)
    verdict = "agree" if not jq_problems else f"DISAGREE ({len(jq_problems)})"
    print(f"  jq vs plain loop: {verdict}")
    for problem in jq_problems[:5]:
        print(f"    {problem}")
    print("  digits of the tool's costs:")
    for line in check_digits(groups, total, args.log):
        print(f"    {line}")


if __name__ == "__main__":
    main()
