"""The command line: configuration, bad input, dry runs, help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal as D

import pytest

import track_usage as tu
from conftest import SCRIPT, TEST_KEY

QUANTUM = "Explain quantum computing in simple terms."


def test_help_documents_every_option_and_the_exit_codes():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True
    ).stdout
    for option in (
        "--model",
        "--max-tokens",
        "--system",
        "--timeout",
        "--no-content",
        "--log-format",
        "--log-file",
        "--pricing",
        "--dry-run",
        "--json",
    ):
        assert option in out
    assert "exit codes:" in out
    for line in ("  0 ", "  1 ", "  2 ", "  130 "):
        assert line in out


@pytest.mark.parametrize("subcommand", sorted(tu.SUBCOMMANDS))
def test_every_subcommand_has_help_with_examples_and_a_readme_section(subcommand):
    out = subprocess.run(
        [sys.executable, str(SCRIPT), subcommand, "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "examples:" in out
    readme = (SCRIPT.parent / "README.md").read_text()
    assert f"python track_usage.py {subcommand}" in readme


def test_missing_key_points_to_env_example_and_sends_nothing(run, server, tmp_path):
    result = run("Hi", env={"OPENROUTER_API_KEY": None})

    assert result.code == 2
    assert result.stderr_lines == [
        f"track_usage: error: OPENROUTER_API_KEY is not set (no .env file in"
        f" {tmp_path} or above): export it, or copy .env.example to .env and put"
        " your key there"
    ]
    assert server.requests == []
    assert not result.log.exists()


def test_key_is_read_from_a_dotenv_file_above_the_working_folder(run, server, tmp_path):
    (tmp_path / ".env").write_text(
        f'export OPENROUTER_API_KEY="{TEST_KEY}"  # my key\n'
        "OPENROUTER_MODEL='openai/gpt-4o'\n"
    )
    work = tmp_path / "project" / "sub"
    work.mkdir(parents=True)
    result = run("Hi", env={"OPENROUTER_API_KEY": None}, cwd=work)

    assert result.code == 0
    [request] = server.chat_requests
    assert request.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert request.json()["model"] == "openai/gpt-4o"


def test_the_real_environment_wins_over_dotenv(run, server, tmp_path):
    (tmp_path / ".env").write_text("OPENROUTER_API_KEY=sk-or-v1-from-dotenv\n")
    run("Hi")
    assert server.chat_requests[0].headers["authorization"] == f"Bearer {TEST_KEY}"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("",), None, "the prompt is empty; pass some text, or - for stdin"),
        (("   ",), None, "the prompt is empty; pass some text, or - for stdin"),
        ((), "\n  \r\n", "no prompts on stdin: give one per line, or pass a prompt"),
        (
            (),
            b"fine\n\xff\xfe broken\n",
            "stdin is not UTF-8 text (line 2, byte 6); convert it first, e.g. with"
            " iconv -t UTF-8",
        ),
        (
            ("Hi", "--log-file", "usage.jsonl", "--log-format", "csv"),
            None,
            "--log-format csv does not match the log file usage.jsonl; use a .csv"
            " file name",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line_and_sends_nothing(
    run, server, args, stdin, message
):
    result = run(*args, stdin=stdin)

    assert (result.code, result.stdout) == (2, "")
    assert result.stderr_lines == [f"track_usage: error: {message}"]
    assert server.requests == []


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (
            ("--max-tokens", "0"),
            "argument --max-tokens: expected a whole number from 1 to 10,000,000,"
            " got '0'",
        ),
        (
            ("--max-tokens", "ten"),
            "argument --max-tokens: expected a whole number from 1 to 10,000,000,"
            " got 'ten'",
        ),
        (
            ("--timeout", "-1"),
            "argument --timeout: expected seconds above 0 and up to 86,400, got '-1'",
        ),
        (("--log-format", "xml"), "argument --log-format: invalid choice: 'xml'"),
    ],
)
def test_bad_options_exit_2(run, server, args, problem):
    result = run("Hi", *args)
    assert result.code == 2
    assert problem in result.stderr
    assert "Traceback" not in result.stderr
    assert server.requests == []


def test_missing_pricing_file_is_named(run, server, tmp_path):
    result = run("Hi", "--pricing", "nowhere.json")
    assert result.code == 2
    assert result.stderr_lines == [
        "track_usage: error: cannot read pricing file nowhere.json: No such file or"
        " directory; pass --pricing PATH to use another file"
    ]
    assert server.requests == []


def test_malformed_pricing_file_names_the_model(run, server, tmp_path):
    (tmp_path / "p.json").write_text(
        '{"unit": "USD per 1K tokens",'
        ' "models": {"x/y": {"prompt": "1", "completion": 1}}}'
    )
    result = run("Hi", "--pricing", "p.json")
    assert result.code == 2
    assert result.stderr_lines == [
        'track_usage: error: p.json: model "x/y": "prompt" must be a JSON number of'
        ' USD per 1K tokens, got the string "1"'
    ]


def test_pricing_file_that_is_not_json(run, tmp_path):
    (tmp_path / "p.json").write_text("{unit: oops}")
    result = run("Hi", "--pricing", "p.json")
    assert result.code == 2
    assert result.stderr.startswith("track_usage: error: p.json is not valid JSON: ")


def test_unwritable_log_is_refused_before_any_call(run, server, tmp_path):
    (tmp_path / "blocker").write_text("a file, not a folder")
    result = run("Hi", "--log-file", "blocker/usage.jsonl")
    assert result.code == 2
    assert "cannot write the log file blocker/usage.jsonl" in result.stderr
    assert server.requests == []


def test_dry_run_prints_the_estimate_and_sends_logs_and_needs_nothing(run, server):
    result = run(
        QUANTUM, "--dry-run", "-m", "openai/gpt-4o", env={"OPENROUTER_API_KEY": None}
    )

    assert result.code == 0
    assert result.stdout == (
        "openai/gpt-4o: 14 prompt tokens (o200k_base); cost $0.000035 (prompt only)"
        " .. $0.010275 (with 1,024 output tokens)\n"
    )
    assert result.stderr == ""
    assert server.requests == []
    assert not result.log.exists()


def test_dry_run_json_gives_the_estimate_fields(run):
    result = run(
        QUANTUM,
        "--dry-run",
        "--json",
        "-m",
        "anthropic/claude-haiku-4.5",
        "--max-tokens",
        "100",
    )

    assert json.loads(result.stdout, parse_float=D) == {
        "model": "anthropic/claude-haiku-4.5",
        "input_line": None,
        "input_id": None,
        "prompt_tokens_estimated": 15,
        "tokenizer": "cl100k_base",
        "tokenizer_approx": True,
        "max_tokens": 100,
        "pricing_model": "anthropic/claude-haiku-4.5",
        "estimated_cost_min": D("0.000015"),
        "estimated_cost_max": D("0.000515"),
    }


def test_dry_run_of_an_unpriced_model_says_so(run):
    result = run("Hi", "--dry-run", "-m", "vendor/unknown")
    assert result.code == 0
    assert result.stdout.endswith("; cost unknown (no price)\n")
    assert 'no price for "vendor/unknown"' in result.stderr


def test_unavailable_encoding_is_reported_once_and_estimated(run, tmp_path):
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    result = run(
        "--dry-run",
        "--json",
        stdin=f"{QUANTUM}\nHi\n",
        env={"TIKTOKEN_CACHE_DIR": str(empty)},
        timeout=120,
    )

    assert result.code == 0
    [warning] = result.stderr_lines
    assert warning.startswith(
        'track_usage: warning: tiktoken encoding "o200k_base" is unavailable ('
    )
    assert warning.endswith(
        "token estimates use UTF-8 bytes / 4 instead. Set"
        " TIKTOKEN_CACHE_DIR to a folder holding the encoding,"
        " or run once with network access"
    )
    estimates = [json.loads(line) for line in result.stdout.splitlines()]
    # 3 per message + "user" (1) + the text (42 or 2 bytes / 4) + 3 priming
    assert [e["prompt_tokens_estimated"] for e in estimates] == [18, 8]
    assert {e["tokenizer"] for e in estimates} == {"utf8_bytes/4"}


def test_an_internal_error_is_one_line_without_traceback(run, server, tmp_path):
    # A pricing file that is a folder: reading it fails in an unexpected way
    # on some systems and an expected way on others; never a traceback.
    (tmp_path / "dir.json").mkdir()
    result = run("Hi", "--pricing", "dir.json")
    assert result.code == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr_lines) == 1


def test_the_key_never_reaches_output_even_in_debug_mode(run, server):
    server.enqueue()
    result = run("Hi", env={"TRACK_USAGE_DEBUG": "1"})
    assert TEST_KEY not in result.stdout + result.stderr
    assert os.environ.get("OPENROUTER_API_KEY") != TEST_KEY
