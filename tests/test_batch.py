"""Batches: input files, concurrency, ordered output, retries, stop rules, resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from conftest import SCRIPT, script_env
from fake_openrouter import Drop, Respond, Seen, completion

PAYMENT = {"error": {"code": 402, "message": "Insufficient credits"}}
NO_KEY = {"error": {"code": 401, "message": "User not found."}}


def usage(prompt: int, completion_: int, **extra: object) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion_, **extra}


def echo(delay_of=lambda prompt: 0.0):
    """A responder that replies "re: <prompt>" after a per-prompt delay."""

    def respond(request: Seen) -> Respond:
        reply = completion(f"re: {request.prompt}", usage=usage(10, 2))
        return Respond(reply, delay_s=delay_of(request.prompt))

    return respond


def test_replies_print_in_input_order_while_calls_run_in_parallel(run, server):
    delays = {"p1": 0.1, "p2": 0.9, "p3": 0.6, "p4": 0.3, "p5": 1.5}
    server.responder = echo(delays.get)
    result = run("--concurrency", "4", stdin="\n".join(delays))

    assert result.code == 0
    assert result.stdout.splitlines() == [f"re: {p}" for p in delays]
    # appended as they finish: the first call alone, then p2-p4 together,
    # then p5 once a worker is free
    assert [record["prompt"] for record in result.records()] == [
        "p1",
        "p4",
        "p3",
        "p2",
        "p5",
    ]
    assert result.records()[0]["input_line"] == 1
    arrived = {request.prompt: request.at for request in server.chat_requests}
    assert arrived["p2"] >= arrived["p1"] + 0.1  # p1 was answered first
    wave = [arrived["p2"], arrived["p3"], arrived["p4"]]
    assert max(wave) - min(wave) < 0.2  # not one after another
    assert result.stderr_lines[-1] == (
        "Summary: 5 ok, 0 failed, 0 not sent; 50 prompt + 10 completion tokens;"
        " $0.000014 booked"
    )


def test_usage_lines_of_a_batch_name_their_input_line(run, server):
    server.responder = echo()
    result = run("--concurrency", "1", stdin="a\n\nb\n")
    assert result.stderr_lines[:2] == [
        "line 1: Input tokens: 10, Output tokens: 2, Cost: $0.000003"
        " (from pricing.json)",
        "line 3: Input tokens: 10, Output tokens: 2, Cost: $0.000003"
        " (from pricing.json)",
    ]


def test_jsonl_input_carries_multiline_prompts_models_and_ids(run, server, tmp_path):
    server.responder = echo()
    (tmp_path / "in.jsonl").write_text(
        '{"prompt": "two\\nlines", "id": "q1"}\n'
        "not json at all\n"
        '{"prompt": "other", "model": "openai/gpt-4o", "max_tokens": 5, "id": 7}\n'
        '{"prompt": ""}\n'
        '{"prompt": "x", "max_token": 5}\n'
    )
    result = run("-i", "in.jsonl", "--concurrency", "1")

    assert result.code == 0
    requests = [r.json() for r in server.chat_requests]
    assert [
        (r["messages"][0]["content"], r["model"], r["max_tokens"]) for r in requests
    ] == [
        ("two\nlines", "openai/gpt-4o-mini", 1024),
        ("other", "openai/gpt-4o", 5),
    ]
    assert [(r["input_line"], r["input_id"]) for r in result.records()] == [
        (1, "q1"),
        (3, "7"),
    ]
    assert result.stderr_lines[:3] == [
        "track_usage: warning: in.jsonl line 2: not valid JSON (Expecting value);"
        " skipped",
        'track_usage: warning: in.jsonl line 4: "prompt" must be a non-empty string;'
        " skipped",
        'track_usage: warning: in.jsonl line 5: unknown key "max_token" (known: prompt,'
        " model, max_tokens, id); skipped",
    ]


def test_a_plain_text_input_file_is_one_prompt_per_line(run, server, tmp_path):
    (tmp_path / "in.txt").write_text('{"not": "a prompt object"}\nsecond\n')
    run("--input", "in.txt", "--concurrency", "1")
    assert [r.prompt for r in server.chat_requests] == [
        '{"not": "a prompt object"}',
        "second",
    ]


# --- retries ------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        *[
            Respond({"error": {"code": status, "message": "try later"}}, status)
            for status in (408, 429, 500, 502, 503, 504, 524, 529)
        ],
        Respond("<html>Bad Gateway</html>", 502),
        Respond({"error": {"code": 503, "message": "upstream overloaded"}}, 200),
        Drop(),
        Respond(completion("late"), delay_s=2),
    ],
    ids=lambda f: (getattr(f, "status", None) and f"{f.status}") or type(f).__name__,
)
def test_retryable_failures_recover(run, server, failure):
    server.enqueue(failure, Respond(completion("ok", usage=usage(9, 1))))
    result = run("Hi", "--timeout", "1")

    assert (result.code, result.stdout) == (0, "ok\n")
    assert len(server.chat_requests) == 2
    [record] = result.records()
    assert (record["status"], record["attempts"]) == ("ok", 2)


def test_retry_after_is_honoured_and_attempts_show_with_verbose(run, server):
    server.enqueue(
        Respond(
            {"error": {"code": 429, "message": "slow down"}}, 429, {"Retry-After": "2"}
        ),
        Respond(completion("ok", usage=usage(9, 1))),
    )
    result = run("Hi", "-v")

    first, second = server.chat_requests
    assert second.at - first.at >= 1.95
    assert result.stderr_lines[0] == (
        "track_usage: attempt 1 of 4 failed: OpenRouter error 429: slow down (rate"
        " limited; wait and try again); retrying in 2.0 s"
    )


def test_retries_are_bounded(run, server):
    server.responder = lambda request: Respond(
        {"error": {"code": 503, "message": "down"}}, 503
    )
    result = run("Hi", "--retries", "2")

    assert result.code == 1
    assert len(server.chat_requests) == 3
    assert result.records()[0]["attempts"] == 3


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404])
def test_client_errors_are_never_retried(run, server, status):
    server.enqueue(Respond({"error": {"code": status, "message": "no"}}, status))
    result = run("Hi")
    assert result.code == 1
    assert len(server.chat_requests) == 1


# --- stop rules -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            PAYMENT,
            "OpenRouter error 402: Insufficient credits (add credits, or lower"
            " --max-tokens)",
        ),
        (
            NO_KEY,
            "OpenRouter error 401: User not found. (check OPENROUTER_API_KEY; see"
            " .env.example)",
        ),
    ],
)
def test_401_and_402_stop_a_batch_after_exactly_one_request(run, server, body, reason):
    server.responder = lambda request: Respond(body, body["error"]["code"])
    result = run("--concurrency", "4", stdin="a\nb\nc\nd\ne\n")

    assert result.code == 1
    assert len(server.chat_requests) == 1
    assert [r["status"] for r in result.records()] == ["error"]
    assert result.stderr_lines == [
        f"track_usage: error: line 1: {reason}",
        "Summary: 0 ok, 1 failed, 4 not sent; 0 prompt + 0 completion tokens;"
        " $0.000000 booked",
        f"Stopped: {reason}",
        "Not sent: line 2, line 3, line 4, line 5",
    ]


def test_prompts_not_sent_are_listed_in_json_output(run, server):
    server.responder = lambda request: Respond(PAYMENT, 402)
    result = run("--json", stdin="a\nb\n")

    failed, not_sent = (json.loads(line) for line in result.stdout.splitlines())
    assert failed["status"] == "error"
    assert not_sent == {
        "status": "not_sent",
        "input_line": 2,
        "input_id": None,
        "model": "openai/gpt-4o-mini",
        "reason": "OpenRouter error 402: Insufficient credits (add credits, or lower"
        " --max-tokens)",
    }


def test_a_daily_quota_429_stops_the_batch_without_retrying(run, server):
    quota = {
        "error": {
            "code": 429,
            "message": "Rate limit exceeded: free-models-per-day. Add 10 credits",
        }
    }
    server.enqueue(Respond(completion("one", usage=usage(9, 1))), Respond(quota, 429))
    result = run("--concurrency", "1", stdin="a\nb\nc\n")

    assert result.code == 1
    assert [r.prompt for r in server.chat_requests] == ["a", "b"]
    assert result.stderr_lines[-1] == "Not sent: line 3"


def test_an_ordinary_failure_does_not_stop_the_batch(run, server):
    server.enqueue(Respond({"error": {"code": 400, "message": "bad"}}, 400))
    result = run("--concurrency", "1", stdin="a\nb\nc\n")
    assert result.code == 1
    assert len(server.chat_requests) == 3


# --- subcommand names as prompts ----------------------------------------------------


def test_a_prompt_named_like_a_subcommand_is_sent_after_double_dash(run, server):
    result = run("--", "budget")
    assert result.code == 0
    assert server.chat_requests[0].prompt == "budget"


def test_a_subcommand_name_after_options_is_never_silently_a_prompt(run, server):
    result = run("-m", "openai/gpt-4o", "budget")
    assert result.code == 2
    assert result.stderr_lines == [
        'track_usage: error: "budget" is a subcommand: put it first (track_usage.py'
        " budget ...), or send it as a prompt after --; see track_usage.py --help"
    ]
    assert server.requests == []


# --- interruption and resume ------------------------------------------------------


def test_ctrl_c_logs_the_call_in_flight_and_resume_sends_only_the_rest(
    run, server, tmp_path
):
    server.responder = echo(lambda prompt: 0.6)
    log = tmp_path / "usage.jsonl"
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--concurrency", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=script_env(tmp_path, server),
        cwd=tmp_path,
    )
    proc.stdin.write(b"p1\np2\np3\np4\np5\n")
    proc.stdin.close()
    deadline = time.monotonic() + 20
    while len(server.chat_requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stderr = proc.stderr.read().decode()
    assert proc.wait(20) == 130

    logged = [json.loads(line)["prompt"] for line in log.read_text().splitlines()]
    assert logged == ["p1", "p2"]  # the call in flight finished and was logged
    assert "interrupted: waiting for 1 call(s) in flight" in stderr
    assert "Not sent: line 3, line 4, line 5" in stderr

    before = len(server.chat_requests)
    result = run("--concurrency", "2", "--resume", stdin="p1\np2\np3\np4\np5\n")
    assert result.code == 0
    assert sorted(r.prompt for r in server.chat_requests[before:]) == ["p3", "p4", "p5"]
    assert (
        result.stderr_lines[0]
        == "Resuming: 2 prompt(s) already logged as ok, 3 to send"
    )


def test_resume_retries_failed_calls_and_matches_logs_without_text(run, server):
    server.enqueue(Respond({"error": {"code": 400, "message": "bad"}}, 400))
    run("--no-content", "--concurrency", "1", stdin="a\nb\n")
    before = len(server.chat_requests)

    result = run("--no-content", "--resume", stdin="a\nb\n")
    assert [r.prompt for r in server.chat_requests[before:]] == ["a"]
    assert result.code == 0


def test_resume_counts_the_model_too(run, server):
    run("Hi")
    run("Hi", "--resume", "-m", "openai/gpt-4o")
    assert len(server.chat_requests) == 2
