"""Hostile input: servers that misbehave, odd files and odd text.

Every run through the `run` fixture also checks that the API key appears in
no output and no log.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest

from conftest import SCRIPT, TEST_KEY, script_env
from fake_openrouter import Respond, completion

IS_LINUX = sys.platform.startswith("linux")


def usage(prompt: int, completion_: int, **extra: object) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion_, **extra}


@pytest.mark.parametrize(
    "failure",
    [
        Respond({"error": {"code": 401, "message": f"Invalid key {TEST_KEY}"}}, 401),
        # a long message cut right inside the key must not leave half of it
        Respond({"error": {"code": 401, "message": "x" * 480 + " " + TEST_KEY}}, 401),
        Respond(f"<html>bad key {TEST_KEY}</html>", 401),
        Respond(
            {"error": {"code": 400, "message": "no", "metadata": {"raw": TEST_KEY}}},
            400,
        ),
    ],
)
def test_a_key_echoed_by_the_server_is_never_printed_or_logged(run, server, failure):
    server.enqueue(failure)
    result = run("Hi", "--json")
    assert result.code == 1
    assert "***" in result.records()[0]["error"]


@pytest.mark.parametrize(
    "odd",
    [
        {"prompt_tokens_details": "none", "completion_tokens_details": [0]},
        {"is_byok": True, "cost_details": "n/a"},
        {"is_byok": [0.5]},
    ],
)
def test_malformed_usage_details_never_lose_the_call(run, server, odd):
    server.enqueue(Respond(completion("ok", usage={**usage(100, 20), **odd})))
    result = run("Hi")

    assert result.code == 0
    [record] = result.records()
    assert (record["prompt_tokens"], record["cached_tokens"]) == (100, 0)
    assert record["total_cost"] == D("0.000027")  # from the table


@pytest.mark.parametrize("cost", [-5, 1e30, "0.01", 1e-300, True])
def test_an_implausible_reported_cost_is_not_booked(run, server, cost):
    body = json.dumps(completion("ok", usage=usage(100, 20, cost=cost)))
    server.enqueue(Respond(body.replace("1e-300", "1e-300000000")))
    result = run("Hi")

    [record] = result.records()
    assert (record["reported_cost"], record["cost_source"]) == (None, "pricing")
    assert len(result.log.read_bytes()) < 5000


def test_absurd_token_counts_fall_back_to_estimates(run, server):
    server.enqueue(Respond(completion("ok", usage=usage(10**63, 5))))
    [record] = run("Hi").records()
    assert record["token_source"] == "estimate"


def test_an_error_that_carries_a_bill_books_it(run, server):
    body = {
        "id": "gen-1",
        "choices": [
            {
                "finish_reason": "error",
                "message": {"content": ""},
                "error": {"code": 400, "message": "context too long"},
            }
        ],
        "usage": usage(1000, 700, cost=0.0183),
    }
    server.enqueue(Respond(body))
    result = run("Hi")

    assert result.code == 1
    [record] = result.records()
    assert record["status"] == "error"
    assert (record["total_cost"], record["cost_source"]) == (D("0.0183"), "reported")


@pytest.mark.parametrize("empty_error", [{}, False, None])
def test_an_empty_error_field_is_no_error(run, server, empty_error):
    server.enqueue(
        Respond({**completion("ok", usage=usage(9, 1)), "error": empty_error})
    )
    assert run("Hi").code == 0


def test_a_paid_model_serving_a_free_request_is_not_booked_at_zero(run, server):
    served = completion(
        "ok", model="meta-llama/llama-3.3-8b-instruct", usage=usage(1000, 700)
    )
    server.enqueue(Respond(served))
    [record] = run("Hi", "-m", "meta-llama/llama-3.3-8b-instruct:free").records()
    assert record["total_cost"] is None


def test_a_zero_error_code_falls_back_to_the_http_status(run, server):
    server.enqueue(Respond({"error": {"code": 0, "message": "odd"}}, 400))
    assert "OpenRouter error 400: odd" in run("Hi").stderr


def test_a_redirect_is_reported_not_followed(run, server):
    server.enqueue(Respond("", 307, {"Location": "http://127.0.0.1:9/elsewhere"}))
    result = run("Hi", "--timeout", "5")
    assert result.code == 1
    assert "redirects to http://127.0.0.1:9/elsewhere; set OPENROUTER_BASE_URL" in (
        result.stderr
    )
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("pricing", "problem"),
    [
        (
            '{"unit": "USD per 1K tokens",'
            ' "models": {"a/b": {"prompt": 1e400, "completion": 1}}}',
            '"prompt" is not a plausible price',
        ),
        (
            '{"unit": "USD per 1K tokens", "models": {"a/b": {"prompt": 0.'
            + "1" * 40
            + ', "completion": 1}}}',
            '"prompt" is not a plausible price',
        ),
        (
            '{"unit": "USD per 1K tokens", "models": {'
            '"a/b": {"prompt": 1, "completion": 1},'
            ' "a/b": {"prompt": 0, "completion": 0}}}',
            '"a/b" appears twice in one object',
        ),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_hostile_price_tables_are_refused_before_any_call(
    run, server, tmp_path, pricing, problem
):
    (tmp_path / "p.json").write_text(pricing)
    result = run("Hi", "--pricing", "p.json")
    assert result.code == 2
    assert problem in result.stderr
    assert server.requests == []


def test_a_missing_price_table_beside_a_copied_script_still_books_reported_costs(
    run, server, tmp_path
):
    alone = tmp_path / "project"
    alone.mkdir()
    (alone / "track_usage.py").write_bytes(SCRIPT.read_bytes())
    server.enqueue(Respond(completion("ok", usage=usage(9, 1, cost=0.0001))))
    proc = subprocess.run(
        [sys.executable, str(alone / "track_usage.py"), "Hi"],
        capture_output=True,
        text=True,
        env=script_env(tmp_path, server),
        cwd=tmp_path,
    )
    assert proc.returncode == 0
    assert proc.stderr.startswith(
        f"track_usage: warning: no price table at {alone / 'pricing.json'}: costs"
    )


def test_a_dotenv_that_is_not_utf8_is_a_clear_error(run, tmp_path):
    (tmp_path / ".env").write_bytes(b"OPENROUTER_MODEL=caf\xe9\n")
    result = run("Hi", "--dry-run")
    assert result.code == 2
    assert result.stderr.startswith(
        f"track_usage: error: cannot read {tmp_path / '.env'}"
    )


def test_the_placeholder_key_is_caught_before_sending(run, server):
    result = run("Hi", env={"OPENROUTER_API_KEY": "sk-or-v1-your-key-here"})
    assert result.code == 2
    assert "still the placeholder from .env.example" in result.stderr
    assert server.requests == []


def test_a_prompt_argument_that_is_not_utf8_is_refused(tmp_path, server):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), b"caf\xe9"],
        capture_output=True,
        env=script_env(tmp_path, server),
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert b"the prompt is not valid UTF-8 text" in proc.stderr
    assert server.requests == []


def test_carriage_returns_alone_also_end_lines(run, server):
    run("--concurrency", "1", stdin="one\rtwo\rthree\r")
    assert [r.prompt for r in server.chat_requests] == ["one", "two", "three"]


def test_unicode_line_separators_are_escaped_in_jsonl(run, server):
    server.enqueue(Respond(completion("a\u2028b\u0085c", usage=usage(9, 3))))
    result = run("Hi")
    raw = result.log.read_text(encoding="utf-8")
    assert "\u2028" not in raw and "\\u2028" in raw
    assert len(raw.splitlines()) == 1
    assert result.records()[0]["response"] == "a\u2028b\u0085c"


def test_a_log_that_is_not_a_regular_file_is_refused(run, server):
    result = run("Hi", "--log-file", os.devnull)
    assert result.code == 2
    assert "is not a regular file" in result.stderr
    assert server.requests == []


@pytest.mark.skipif(not IS_LINUX, reason="uses RLIMIT_FSIZE to fill the 'disk'")
def test_a_failed_append_leaves_no_partial_record_and_shows_the_record(
    tmp_path, server
):
    log = tmp_path / "usage.jsonl"
    log.write_text('{"earlier": "record"}\n')
    limit = log.stat().st_size + 100  # room for part of a record only

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "Hi"],
        capture_output=True,
        text=True,
        env=script_env(tmp_path, server),
        cwd=tmp_path,
        preexec_fn=small_disk,
    )
    assert proc.returncode == 1
    assert log.read_text() == '{"earlier": "record"}\n'
    assert f"could not append to {log}" in proc.stderr
    assert '"status": "ok"' in proc.stderr  # the record, shown so nothing is lost
    assert proc.stdout.startswith("This is a canned reply")


def test_every_option_value_has_a_sane_upper_bound(run, server):
    for option, value in (("--timeout", "1e300"), ("--max-tokens", "9" * 69)):
        result = run("Hi", option, value, "--dry-run")
        assert result.code == 2
        assert "Traceback" not in result.stderr


def test_a_closed_stdout_is_not_a_crash(tmp_path, server):
    script = Path(SCRIPT)
    proc = subprocess.run(
        f"{sys.executable} {script} --dry-run < /dev/null 'a' | head -c 0",
        shell=True,
        capture_output=True,
        text=True,
        env=script_env(tmp_path, server),
        cwd=tmp_path,
    )
    assert "Traceback" not in proc.stderr
