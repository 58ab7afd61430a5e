"""--stream: server-sent events, usage in either chunk shape, errors mid-stream."""

from __future__ import annotations

import json
from decimal import Decimal as D

from fake_openrouter import Respond, Stream

MODEL = "openai/gpt-4o-mini"
USAGE = {
    "prompt_tokens": 40,
    "completion_tokens": 129,
    "total_tokens": 169,
    "cost": 0.0000834,
    "completion_tokens_details": {"reasoning_tokens": 31},
}


def event(**chunk: object) -> str:
    body = {"id": "gen-stream-1", "object": "chat.completion.chunk", "model": MODEL}
    return f"data: {json.dumps({**body, **chunk})}\n\n"


def delta(text: str, finish: str | None = None, **extra: object) -> str:
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": finish}
    return event(choices=[choice], **extra)


def test_stream_skips_comments_and_reads_usage_from_an_empty_choices_chunk(run, server):
    server.enqueue(
        Stream(
            [
                ": OPENROUTER PROCESSING\n\n",
                ": OPENROUTER PROCESSING\n\n",
                delta("Hello"),
                delta(", world"),
                delta("", "stop"),
                event(choices=[], usage=USAGE),
                "data: [DONE]\n\n",
            ]
        )
    )
    result = run("Hi", "--stream")

    assert result.code == 0
    assert result.stdout == "Hello, world\n"
    assert server.chat_requests[0].json()["stream"] is True
    [record] = result.records()
    assert (record["response"], record["status"]) == ("Hello, world", "ok")
    assert (record["prompt_tokens"], record["completion_tokens"]) == (40, 129)
    assert record["reasoning_tokens"] == 31
    assert (record["token_source"], record["cost_source"]) == ("api", "reported")
    assert record["total_cost"] == D("0.0000834")
    assert (record["finish_reason"], record["request_id"]) == ("stop", "gen-stream-1")


def test_stream_reads_usage_from_the_final_choice_chunk(run, server):
    server.enqueue(
        Stream([delta("To"), delta("", "stop", usage=USAGE), "data: [DONE]\n\n"])
    )
    result = run("Hi", "--stream")

    assert result.stdout == "To\n"
    [record] = result.records()
    assert (record["completion_tokens"], record["total_cost"]) == (129, D("0.0000834"))


def test_stream_without_usage_falls_back_to_labelled_estimates(run, server):
    server.enqueue(
        Stream([delta("Hello there"), delta("", "stop"), "data: [DONE]\n\n"])
    )
    result = run("Explain quantum computing in simple terms.", "--stream")

    [record] = result.records()
    assert record["token_source"] == "estimate"
    assert (record["prompt_tokens"], record["completion_tokens"]) == (14, 2)
    assert record["cost_source"] == "pricing"
    assert result.stderr_lines == [
        "Input tokens: 14, Output tokens: 2, Cost: $0.000003"
        " (from pricing.json, estimated tokens)"
    ]


def test_an_error_event_mid_stream_keeps_the_partial_reply(run, server):
    failure = {
        "code": 429,
        "message": "Rate limit exceeded",
        "metadata": {"error_type": "rate_limit_exceeded"},
    }
    error_choice = {"index": 0, "delta": {"content": ""}, "finish_reason": "error"}
    server.enqueue(
        Stream(
            [
                delta("The answer"),
                delta(" is"),
                event(error=failure, choices=[error_choice]),
            ]
        )
    )
    result = run("Hi", "--stream", "--retries", "0")

    assert result.code == 1
    assert result.stdout == "The answer is\n"
    assert result.stderr_lines == [
        "track_usage: error: OpenRouter error 429: Rate limit exceeded (rate limited;"
        " wait and try again)"
    ]
    [record] = result.records()
    assert (record["status"], record["response"]) == ("error", "The answer is")
    # text arrived, so it may have been billed: booked from estimates, labelled
    assert (record["token_source"], record["completion_tokens"]) == ("estimate", 3)
    assert record["cost_source"] == "pricing"


def test_a_stream_that_stops_before_done_is_an_error(run, server):
    server.enqueue(Stream([delta("Half an ans")]))
    result = run("Hi", "--stream", "--retries", "0")

    assert result.code == 1
    assert result.stderr_lines == [
        "track_usage: error: the stream ended before it was complete"
    ]
    [record] = result.records()
    assert record["response"] == "Half an ans"


def test_an_http_error_before_the_stream_starts(run, server):
    server.enqueue(Respond({"error": {"code": 401, "message": "User not found."}}, 401))
    result = run("Hi", "--stream")

    assert result.code == 1
    assert result.stderr_lines == [
        "track_usage: error: OpenRouter error 401: User not found. (check"
        " OPENROUTER_API_KEY; see .env.example)"
    ]
    assert result.records()[0]["response"] is None


def test_stream_with_json_prints_only_the_record(run, server):
    server.enqueue(Stream([delta("Hi!", "stop", usage=USAGE), "data: [DONE]\n\n"]))
    result = run("Hi", "--stream", "--json")
    assert json.loads(result.stdout)["response"] == "Hi!"


def test_stream_of_a_batch_runs_one_call_at_a_time(run, server):
    server.enqueue(
        Stream([delta("one", "stop"), "data: [DONE]\n\n"]),
        Stream([delta("two", "stop"), "data: [DONE]\n\n"]),
    )
    result = run("--stream", stdin="a\nb\n")
    assert result.stdout == "one\ntwo\n"


def test_stream_refuses_parallel_calls(run, server):
    result = run("Hi", "--stream", "--concurrency", "2")
    assert result.code == 2
    assert "--stream prints replies as they arrive, one call at a time" in result.stderr
