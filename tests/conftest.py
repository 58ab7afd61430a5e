"""Shared fixtures: a loopback OpenRouter and a way to run the script end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from fake_openrouter import FakeOpenRouter

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "track_usage.py"
TEST_KEY = "sk-or-v1-loopback-test-key-7f3a9c51"
SHARED_TIKTOKEN_CACHE = ROOT.parent / "shared" / "tiktoken-cache"
# Nothing may leave the machine: any request that is not for 127.0.0.1 goes
# to a closed local port instead (tiktoken's downloads included).
DEAD_PROXY = "http://127.0.0.1:9"

if "TIKTOKEN_CACHE_DIR" not in os.environ and SHARED_TIKTOKEN_CACHE.is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(SHARED_TIKTOKEN_CACHE)
if "TIKTOKEN_CACHE_DIR" not in os.environ:
    # Setup, not a test: with no encodings at hand, let tiktoken fetch the two
    # the tests count with into its own cache, once, before the network closes.
    import tiktoken

    for encoding in ("cl100k_base", "o200k_base"):
        tiktoken.get_encoding(encoding)
for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
    os.environ[name] = DEAD_PROXY
os.environ["NO_PROXY"] = "127.0.0.1,localhost"


@dataclass
class Result:
    """What one run of the script did."""

    code: int
    stdout: str
    stderr: str
    log: Path

    def records(self) -> list[dict]:
        """The log's records (JSONL or CSV), read back exactly."""
        return read_log(self.log)

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()


def read_log(path: Path) -> list[dict]:
    if path.suffix == ".csv":
        import csv

        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line, parse_float=Decimal) for line in lines if line]


def script_env(tmp_path: Path, server: FakeOpenRouter | None) -> dict[str, str]:
    """A clean environment pointing the script at the loopback server."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
        "OPENROUTER_API_KEY": TEST_KEY,
        "TRACK_USAGE_LOG_FILE": str(tmp_path / "usage.jsonl"),
        "HTTP_PROXY": DEAD_PROXY,
        "HTTPS_PROXY": DEAD_PROXY,
        "ALL_PROXY": DEAD_PROXY,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    if server is not None:
        env["OPENROUTER_BASE_URL"] = server.base_url
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        env["TIKTOKEN_CACHE_DIR"] = os.environ["TIKTOKEN_CACHE_DIR"]
    return env


def assert_no_key(*texts: str | bytes) -> None:
    for text in texts:
        needle = TEST_KEY.encode() if isinstance(text, bytes) else TEST_KEY
        assert needle not in text, "the API key leaked"


def spawn(
    tmp_path: Path, server: FakeOpenRouter, *args: str, stdin: str
) -> subprocess.Popen:
    """Start the script in the background, feeding it `stdin`."""
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=script_env(tmp_path, server),
        cwd=tmp_path,
    )
    proc.stdin.write(stdin.encode())
    proc.stdin.close()
    return proc


@pytest.fixture
def server():
    with FakeOpenRouter() as running:
        yield running


@pytest.fixture
def run(tmp_path: Path, server: FakeOpenRouter):
    """Run track_usage.py in a subprocess; check that the key never leaks."""

    def run(
        *args: str,
        stdin: str | bytes | None = None,
        env: dict[str, str | None] | None = None,
        cwd: Path | None = None,
        timeout: float = 60,
    ) -> Result:
        environment = script_env(tmp_path, server)
        for name, value in (env or {}).items():
            if value is None:
                environment.pop(name, None)
            else:
                environment[name] = value
        data = stdin.encode() if isinstance(stdin, str) else stdin
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), *args],
            input=data,
            capture_output=True,
            cwd=cwd or tmp_path,
            env=environment,
            timeout=timeout,
        )
        stdout, stderr = proc.stdout.decode(), proc.stderr.decode()
        log = Path(environment.get("TRACK_USAGE_LOG_FILE", tmp_path / "usage.jsonl"))
        if "--log-file" in args:
            log = Path(cwd or tmp_path, args[args.index("--log-file") + 1])
        assert_no_key(stdout, stderr)
        for path in tmp_path.rglob("*"):
            if path.suffix in (".jsonl", ".csv", ".lock", ".json") and path.is_file():
                assert_no_key(path.read_bytes())
        return Result(proc.returncode, stdout, stderr, log)

    return run
