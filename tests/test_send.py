"""The main job, end to end against the loopback server: send, count, price, log."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from conftest import TEST_KEY
from fake_openrouter import Drop, Respond, completion

QUANTUM = "Explain quantum computing in simple terms."


def usage(prompt: int, completion_: int, **extra: object) -> dict:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_,
        "total_tokens": prompt + completion_,
        **extra,
    }


def test_a_call_prints_the_reply_and_logs_tokens_and_exact_cost(run, server):
    server.enqueue(
        Respond(
            completion("Qubits!", model="openai/gpt-3.5-turbo", usage=usage(15, 150))
        )
    )
    result = run(QUANTUM, "-m", "openai/gpt-3.5-turbo")

    assert result.code == 0
    assert result.stdout == "Qubits!\n"
    assert result.stderr == (
        "Input tokens: 15, Output tokens: 150, Cost: $0.000233 (from pricing.json)\n"
    )
    [record] = result.records()
    assert record == {
        "schema_version": 4,
        "timestamp": record["timestamp"],
        "request_id": "gen-loopback-1",
        "input_line": None,
        "input_id": None,
        "model": "openai/gpt-3.5-turbo",
        "model_used": "openai/gpt-3.5-turbo",
        "provider": "Loopback",
        "status": "ok",
        "error": None,
        "system": None,
        "prompt": QUANTUM,
        "response": "Qubits!",
        "prompt_tokens": 15,
        "completion_tokens": 150,
        "total_tokens": 165,
        "cached_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "token_source": "api",
        "prompt_tokens_estimated": 15,
        "completion_tokens_estimated": 3,
        "tokenizer": "cl100k_base",
        "tokenizer_approx": False,
        "pricing_model": "openai/gpt-3.5-turbo",
        "price_prompt_per_1k": D("0.0005"),
        "price_completion_per_1k": D("0.0015"),
        "pricing_cost": D("0.0002325"),
        "reported_cost": None,
        "is_byok": None,
        "total_cost": D("0.0002325"),
        "cost_source": "pricing",
        "latency_ms": record["latency_ms"],
        "attempts": 1,
        "finish_reason": "stop",
        "cache_hit": False,
        "saved_cost": None,
        "prompt_tokens_unoptimized": None,
        "reserved_cost": None,
        "prompt_hash": record["prompt_hash"],
    }
    assert len(record["prompt_hash"]) == 64
    assert record["timestamp"].endswith("+00:00")
    assert isinstance(record["latency_ms"], int)
    assert '"total_cost": 0.0002325,' in result.log.read_text()


def test_the_request_carries_model_messages_max_tokens_and_attribution(run, server):
    run(QUANTUM, "--system", "Be brief.", "--max-tokens", "64", "-m", "openai/gpt-4o")

    [request] = server.chat_requests
    assert request.path == "/api/v1/chat/completions"
    assert request.json() == {
        "model": "openai/gpt-4o",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": QUANTUM},
        ],
        "max_tokens": 64,
        "usage": {"include": True},
    }
    assert request.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert request.headers["x-title"] == "track_usage.py"
    assert request.headers["content-length"] == str(len(request.body))


def test_max_tokens_is_always_sent_with_its_default(run, server):
    run("Hi")
    assert server.chat_requests[0].json()["max_tokens"] == 1024


def test_default_model_comes_from_the_environment(run, server):
    run("Hi", env={"OPENROUTER_MODEL": "anthropic/claude-haiku-4.5"})
    assert server.chat_requests[0].json()["model"] == "anthropic/claude-haiku-4.5"


def test_openrouters_reported_cost_is_booked_and_both_costs_are_logged(run, server):
    server.enqueue(Respond(completion("ok", usage=usage(100, 20, cost=0.000031))))
    result = run("Hi", "-m", "openai/gpt-4o-mini")

    [record] = result.records()
    assert record["reported_cost"] == D("0.000031")
    assert record["pricing_cost"] == D("0.000027")
    assert (record["total_cost"], record["cost_source"]) == (D("0.000031"), "reported")
    assert result.stderr_lines == [
        "Input tokens: 100, Output tokens: 20, Cost: $0.000031 (billed by OpenRouter)"
    ]


def test_a_reported_cost_of_zero_is_a_real_zero(run, server):
    server.enqueue(Respond(completion("ok", usage=usage(100, 20, cost=0))))
    [record] = run("Hi").records()
    assert (record["total_cost"], record["cost_source"]) == (0, "reported")


def test_byok_spend_adds_the_upstream_cost_exactly(run, server):
    byok = usage(
        10,
        10,
        cost=0.0001,
        is_byok=True,
        cost_details={"upstream_inference_cost": 0.0002},
    )
    server.enqueue(Respond(completion("ok", usage=byok)))
    result = run("Hi")

    [record] = result.records()
    assert (record["reported_cost"], record["is_byok"]) == (D("0.0003"), True)
    # binary floats would have written 0.00030000000000000003
    assert '"total_cost": 0.0003,' in result.log.read_text()


def test_cached_and_reasoning_tokens_are_logged_and_priced(run, server):
    counts = usage(
        1000,
        10,
        prompt_tokens_details={"cached_tokens": 400},
        completion_tokens_details={"reasoning_tokens": 8},
    )
    server.enqueue(Respond(completion("ok", model="openai/gpt-4o", usage=counts)))
    [record] = run("Hi", "-m", "openai/gpt-4o").records()

    assert (record["prompt_tokens"], record["cached_tokens"]) == (1000, 400)
    assert (record["completion_tokens"], record["reasoning_tokens"]) == (10, 8)
    assert record["total_tokens"] == 1010
    # 600 x 0.0025 + 400 x 0.00125 + 10 x 0.01, per 1K
    assert record["pricing_cost"] == D("0.0021")


def test_null_content_is_logged_as_null(run, server):
    server.enqueue(Respond(completion(None, usage=usage(12, 40))))
    result = run("Hi")

    assert (result.code, result.stdout) == (0, "\n")
    [record] = result.records()
    assert (record["response"], record["completion_tokens_estimated"]) == (None, None)
    assert record["completion_tokens"] == 40


def test_a_fallback_model_is_priced_as_the_model_that_served(run, server):
    served = completion(
        "ok", model="openai/gpt-4o-mini-2024-07-18", usage=usage(1000, 0)
    )
    server.enqueue(Respond(served))
    [record] = run("Hi", "-m", "openai/gpt-4o").records()

    assert record["model_used"] == "openai/gpt-4o-mini-2024-07-18"
    assert record["pricing_model"] == "openai/gpt-4o-mini"
    assert record["pricing_cost"] == D("0.00015")


def test_an_unknown_price_is_never_booked_as_zero(run, server):
    served = completion("ok", model="vendor/new-model", usage=usage(10, 10))
    server.enqueue(Respond(served))
    result = run("Hi", "-m", "vendor/new-model")

    assert result.code == 0
    [record] = result.records()
    assert (
        record["pricing_cost"] is record["total_cost"] is record["cost_source"] is None
    )
    warning, usage_line = result.stderr_lines
    assert warning.startswith('track_usage: warning: no price for "vendor/new-model"')
    assert 'add it under "models" in USD per 1K tokens' in warning
    assert usage_line == "Input tokens: 10, Output tokens: 10, Cost: unknown"


def test_missing_usage_falls_back_to_labelled_estimates(run, server):
    server.enqueue(Respond(completion("Hello there", model="openai/gpt-3.5-turbo")))
    result = run(QUANTUM, "-m", "openai/gpt-3.5-turbo")

    [record] = result.records()
    assert record["token_source"] == "estimate"
    assert (record["prompt_tokens"], record["completion_tokens"]) == (15, 2)
    assert record["pricing_cost"] == D("0.0000105")
    assert result.stderr_lines == [
        "Input tokens: 15, Output tokens: 2, Cost: $0.000011"
        " (from pricing.json, estimated tokens)"
    ]


def test_json_output_is_the_log_record_and_nothing_else(run, server):
    server.enqueue(Respond(completion("ok", usage=usage(9, 1))))
    result = run("Hi", "--json")

    assert result.code == 0
    assert result.stderr == ""
    [line] = result.stdout.splitlines()
    assert json.loads(line, parse_float=D) == result.records()[0]


def test_no_content_keeps_texts_out_of_the_log_but_shows_the_reply(run, server):
    server.enqueue(Respond(completion("secret reply", usage=usage(9, 2))))
    result = run("secret prompt", "--system", "secret system", "--no-content")

    assert result.stdout == "secret reply\n"
    [record] = result.records()
    assert (record["prompt"], record["system"], record["response"]) == (
        None,
        None,
        None,
    )
    assert record["prompt_tokens"] == 9
    assert b"secret" not in result.log.read_bytes()


def test_prompts_from_stdin_are_sent_one_per_non_blank_line(run, server):
    result = run(stdin="first prompt\r\n\r\n   \r\nsecond, with comma\r\n")

    assert result.code == 0
    sent = [r.json()["messages"][0]["content"] for r in server.chat_requests]
    assert sorted(sent) == ["first prompt", "second, with comma"]
    # logged as the calls finish; each record says where its prompt came from
    logged = sorted((r["input_line"], r["prompt"]) for r in result.records())
    assert logged == [(1, "first prompt"), (4, "second, with comma")]


def test_a_dash_reads_stdin_too(run, server):
    run("-", stdin="only line")
    assert server.chat_requests[0].json()["messages"][0]["content"] == "only line"


# --- failures: one line on stderr, exit code 1, an error record -------------


def assert_failed_call(result, message: str) -> dict:
    assert result.code == 1
    assert result.stderr_lines == [f"track_usage: error: {message}"]
    [record] = result.records()
    assert (record["status"], record["error"]) == ("error", message)
    assert record["total_cost"] is None
    return record


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (
            401,
            {"error": {"code": 401, "message": "User not found."}},
            "OpenRouter error 401: User not found."
            " (check OPENROUTER_API_KEY; see .env.example)",
        ),
        (
            402,
            {
                "error": {
                    "code": 402,
                    "message": "This request requires more credits, or fewer"
                    " max_tokens. You requested up to 65536 tokens, but can only"
                    " afford 10114.",
                }
            },
            "OpenRouter error 402: This request requires more credits, or fewer"
            " max_tokens. You requested up to 65536 tokens, but can only afford"
            " 10114. (add credits, or lower --max-tokens)",
        ),
        (
            400,
            {"error": {"code": 400, "message": "not a valid model ID"}},
            "OpenRouter error 400: not a valid model ID (check the model id and"
            " the parameters)",
        ),
        (
            403,
            {"error": {"code": 403, "message": "flagged", "metadata": {"reasons": []}}},
            "OpenRouter error 403: flagged (refused by moderation or for lack of"
            " permission)",
        ),
        (
            404,
            {"error": {"code": 404, "message": "No endpoints found"}},
            "OpenRouter error 404: No endpoints found (no endpoint serves this model;"
            " check the model id)",
        ),
        (
            429,
            {"error": {"code": 429, "message": "Rate limit exceeded"}},
            "OpenRouter error 429: Rate limit exceeded (rate limited; wait and try"
            " again)",
        ),
        (
            502,
            {
                "error": {
                    "code": 502,
                    "message": "Provider returned error",
                    "metadata": {"raw": "upstream\nexploded"},
                }
            },
            "OpenRouter error 502: Provider returned error (upstream exploded)"
            " (trouble upstream; try again later)",
        ),
        (
            503,
            {"error": {"code": "server_error", "message": "Overloaded"}},
            "OpenRouter error 503: Overloaded (trouble upstream; try again later)",
        ),
        (
            500,
            "<html>Internal Server Error</html>",
            "HTTP 500: the response is not JSON: '<html>Internal Server Error</html>'"
            " (trouble upstream; try again later)",
        ),
        (
            200,
            '{"id": "gen-1", "choices": [',
            'HTTP 200: the response is not JSON: \'{"id": "gen-1", "choices": [\''
            " (is OPENROUTER_BASE_URL an OpenRouter-compatible API?)",
        ),
        (
            200,
            {"error": {"code": 502, "message": "Upstream error"}},
            "OpenRouter error 502: Upstream error (trouble upstream; try again later)",
        ),
        (
            200,
            {
                "choices": [
                    {
                        "finish_reason": "error",
                        "message": {"content": ""},
                        "error": {"code": 429, "message": "Rate limit exceeded"},
                    }
                ]
            },
            "OpenRouter error 429: Rate limit exceeded (rate limited; wait and try"
            " again)",
        ),
        (
            200,
            {
                "error_type": "unavailable",
                "error": {"http_status": 503, "message": "No capacity"},
            },
            "OpenRouter error 503: No capacity (trouble upstream; try again later)",
        ),
        (
            200,
            {"id": "gen-1", "choices": []},
            "the response holds neither choices nor an error",
        ),
        (418, {"message": "teapot"}, "OpenRouter error 418: HTTP 418"),
    ],
)
def test_api_errors_get_one_line_and_an_error_record(
    run, server, status, body, message
):
    server.enqueue(Respond(body, status))
    record = assert_failed_call(run(QUANTUM, "--retries", "0"), message)
    assert record["prompt"] == QUANTUM
    assert record["prompt_tokens_estimated"] == 14


def test_a_dropped_connection_is_a_failed_call(run, server):
    server.enqueue(Drop())
    result = run("Hi", "--retries", "0")
    assert_failed_call(
        result,
        f"no answer from {server.base_url}/chat/completions: the server closed the"
        " connection without answering",
    )


def test_a_timeout_is_a_failed_call(run, server):
    server.enqueue(Respond(completion("late"), delay_s=3))
    result = run("Hi", "--timeout", "0.5", "--retries", "0")
    assert_failed_call(
        result,
        f"no answer from {server.base_url}/chat/completions within 0.5 s"
        " (raise --timeout, or try again)",
    )


def test_a_refused_connection_is_a_failed_call(run):
    refused = {"OPENROUTER_BASE_URL": "http://127.0.0.1:9/api/v1"}
    result = run("Hi", "--retries", "0", env=refused)
    assert_failed_call(
        result,
        "could not reach http://127.0.0.1:9/api/v1/chat/completions: Connection"
        " refused (check OPENROUTER_BASE_URL and the network)",
    )


def test_one_failure_does_not_hide_the_other_calls(run, server):
    server.enqueue(
        Respond({"error": {"code": 400, "message": "bad"}}, 400),
        Respond(completion("fine", usage=usage(9, 1))),
    )
    result = run(stdin="first\nsecond\n")

    assert result.code == 1
    assert result.stdout == "fine\n"
    statuses = sorted((r["input_line"], r["status"]) for r in result.records())
    assert statuses == [(1, "error"), (2, "ok")]
    assert result.stderr_lines[0] == (
        "track_usage: error: line 1: OpenRouter error 400: bad (check the model id"
        " and the parameters)"
    )
