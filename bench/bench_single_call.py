"""One call through track_usage.py versus the naive tutorial script.

Both run as fresh processes against a loopback server that answers after
300 ms, interleaved, several times each; the medians and their ratio are
printed. Also times `--help` against `python -c "import argparse"`, the floor
for any argparse program: run as a script (`python track_usage.py`, which
Python compiles on every start) and as a module (`python -m track_usage` from
a copy of the script, with Python's bytecode cache allowed and warm).

    python bench/bench_single_call.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import SCRIPT, bench_env, interleaved_medians, loopback_server

PROMPT = "Explain quantum computing in simple terms."
NAIVE = Path(__file__).with_name("naive_tutorial.py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs

    with tempfile.TemporaryDirectory() as tmp, loopback_server(0.3) as base_url:
        env = bench_env(base_url, TRACK_USAGE_LOG_FILE=str(Path(tmp, "bench.jsonl")))
        calls = interleaved_medians(
            {
                "track_usage.py": [sys.executable, str(SCRIPT), PROMPT],
                "naive script": [sys.executable, str(NAIVE), PROMPT],
            },
            env,
            runs,
        )
        # The module form runs from a copy, where Python may write its cache.
        cached_env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        shutil.copy(SCRIPT, tmp)
        module_help = [sys.executable, "-m", "track_usage", "--help"]
        subprocess.run(
            module_help, cwd=tmp, env=cached_env, check=True, capture_output=True
        )
        assert os.path.isdir(os.path.join(tmp, "__pycache__")), "no bytecode cache"
        starts = interleaved_medians(
            {
                "track_usage.py --help": [sys.executable, str(SCRIPT), "--help"],
                "python -m track_usage --help": module_help,
                "import argparse": [sys.executable, "-c", "import argparse"],
            },
            cached_env,
            runs * 2,
            cwd=tmp,
        )

    print(f"one call, server answering after 300 ms (median of {runs} runs each):")
    for name, seconds in calls.items():
        print(f"  {name:30s} {seconds * 1000:7.1f} ms")
    ratio = calls["track_usage.py"] / calls["naive script"]
    print(f"  ratio tool / naive       {ratio:7.2f}   (target: at most 1.0)")
    print(f"start-up (median of {runs * 2} runs each):")
    for name, seconds in starts.items():
        print(f"  {name:30s} {seconds * 1000:7.1f} ms")
    for name in ("track_usage.py --help", "python -m track_usage --help"):
        ratio = starts[name] / starts["import argparse"]
        print(
            f"  ratio {name.split(' --')[0]:22s} {ratio:5.2f}   (target: at most 2.0)"
        )


if __name__ == "__main__":
    main()
