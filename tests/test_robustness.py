"""Money, the budget and the log stay right when servers, files and text are odd."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest

import track_usage as tu
from conftest import TEST_KEY
from fake_openrouter import Respond, Stream, completion


def usage(prompt: int, completion_: int, **extra: object) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion_, **extra}


def event(chunk: dict) -> str:
    return f"data: {json.dumps(chunk)}\n\n"


# --- the key ---------------------------------------------------------------------


def test_a_key_behind_a_long_padding_is_still_removed(run, server):
    server.enqueue(
        Respond({"error": {"code": 401, "message": " " * 1930 + TEST_KEY}}, 401)
    )
    result = run("Hi")  # the fixture fails the test if any part of the key leaks
    assert "***" in result.stderr


def test_a_reply_that_echoes_the_key_is_scrubbed_everywhere(run, server):
    body = completion(f"your key is {TEST_KEY}", usage=usage(9, 5))
    body["provider"] = TEST_KEY[:20] + "..."
    server.enqueue(Respond(body))
    result = run("Hi", "--cache", "--cache-dir", "c")
    assert result.stdout == "your key is ***\n"
    assert result.records()[0]["provider"] == "***..."


# --- bills are never lost -------------------------------------------------------------


def test_an_error_that_carries_a_bill_is_not_retried(run, server):
    billed = {
        "error": {"code": 502, "message": "upstream"},
        "usage": usage(10, 10, cost=0.5),
    }
    server.enqueue(
        Respond(billed), Respond(completion("ok", usage=usage(9, 1, cost=0.001)))
    )
    result = run("Hi")

    assert result.code == 1
    assert len(server.chat_requests) == 1
    [record] = result.records()
    assert (record["status"], record["total_cost"]) == ("error", D("0.5"))


def test_a_stream_that_failed_after_text_is_not_retried(run, server):
    server.enqueue(
        Stream(
            [
                event({"choices": [{"delta": {"content": "Partial text"}}]}),
                event({"choices": [], "usage": usage(10, 10, cost=0.7)}),
                event({"error": {"code": 502, "message": "gone"}, "choices": []}),
            ]
        ),
        Respond(completion("Fine.", usage=usage(9, 1, cost=0.002))),
    )
    result = run("Hi", "--stream")

    assert result.stdout == "Partial text\n"
    assert len(server.chat_requests) == 1
    assert result.records()[0]["total_cost"] == D("0.7")


def test_a_later_usage_chunk_without_a_cost_does_not_hide_the_bill(run, server):
    server.enqueue(
        Stream(
            [
                event(
                    {
                        "choices": [{"delta": {"content": "Hi"}}],
                        "usage": usage(9, 1, cost=0.05),
                    }
                ),
                event({"choices": [], "usage": usage(9, 1, cost=None)}),
                "data: [DONE]\n\n",
            ]
        )
    )
    assert run("Hi", "--stream").records()[0]["total_cost"] == D("0.05")


def test_json_split_over_data_lines_is_one_event(run, server):
    server.enqueue(
        Stream(
            [
                'data: {"choices": [{"delta":\ndata: {"content": "joined"}}],\n',
                'data: "usage": {"prompt_tokens": 9, "completion_tokens": 1}}\n\n',
                "data: [DONE]\n\n",
            ]
        )
    )
    result = run("Hi", "--stream")
    assert (result.code, result.stdout) == (0, "joined\n")


def test_a_server_that_does_not_stream_still_answers(run, server):
    result = run("Hi", "--stream")  # the stand-in's answer to a stream, by default
    assert result.code == 0
    assert result.stdout.startswith("This is a canned reply")


# --- the budget holds -----------------------------------------------------------------


def test_calls_of_unknown_cost_count_at_their_reservation(run, server):
    server.responder = lambda request: Respond(
        completion("ok", model="vendor/fallback-x", usage=usage(8, 1000))
    )
    result = run(
        "--daily-budget",
        "0.002",
        "--max-tokens",
        "1000",
        "--timezone",
        "UTC",
        "--concurrency",
        "1",
        stdin="\n".join("abcdefgh"),
    )
    # each reserves $0.00060645 ("a": 43 tokens at most, with the framing, and
    # 1,000 output tokens); three fit in $0.002
    assert result.code == 3
    assert len(server.chat_requests) == 3
    assert {r["reserved_cost"] for r in result.records()} == {D("0.00060645")}
    budget = json.loads(
        run("budget", "--json", "--timezone", "UTC").stdout, parse_float=D
    )
    assert budget["spent"] == D("0.00181935")
    assert budget["unpriced_counted_as_reserved"] == D("0.00181935")


def test_a_replaced_csv_log_is_read_again(run, server, tmp_path):
    priced = Respond(completion("ok", usage=usage(9, 1, cost=0.3)))
    server.enqueue(priced)
    run("Hi", "--log-file", "u.csv", "--daily-budget", "1", "--timezone", "UTC")
    (tmp_path / "u.csv").unlink()
    server.responder = lambda request: priced
    for _ in range(4):
        run("Hi", "--log-file", "u.csv")
    result = run("budget", "--log-file", "u.csv", "--json", "--timezone", "UTC")
    assert json.loads(result.stdout, parse_float=D)["spent"] == D("1.2")


@pytest.mark.parametrize(
    "state",
    [
        {"buckets": {"100": ["-100", 1, 0, "0"]}},
        {"offset": -5},
        {"reservations": {"x" * 300: "0.1"}},
        {"buckets": {"abc": ["0", 1, 0, "0"]}},
        {"buckets": {"100": ["0", 1]}},
        "not an object",
    ],
)
def test_a_tampered_state_file_is_rebuilt_from_the_log(run, server, tmp_path, state):
    now = datetime.now(timezone.utc).isoformat()
    record = {"schema_version": 4, "timestamp": now, "status": "ok", "total_cost": 0.4}
    (tmp_path / "usage.jsonl").write_text(json.dumps(record) + "\n")
    full = {
        "format": 2,
        "offset": 0,
        "line": 1,
        "log": ["", "", 0],
        "buckets": {},
        "reservations": {},
    }
    full = {**full, **state} if isinstance(state, dict) else state
    (tmp_path / "usage.jsonl.budget.json").write_text(json.dumps(full))
    result = run("budget", "--json", "--timezone", "UTC")
    assert result.code == 0
    assert json.loads(result.stdout, parse_float=D)["spent"] == D("0.4")


def test_a_negative_cost_in_the_log_does_not_free_the_budget(run, tmp_path):
    now = datetime.now(timezone.utc).isoformat()
    rows = [
        {"timestamp": now, "status": "ok", "total_cost": 0.5, "prompt_tokens": 1},
        {"timestamp": now, "status": "ok", "total_cost": -5, "prompt_tokens": 1},
    ]
    (tmp_path / "usage.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    budget = json.loads(
        run("budget", "--json", "--timezone", "UTC").stdout, parse_float=D
    )
    assert (budget["spent"], budget["unpriced_calls"]) == (D("0.5"), 1)


# --- the log reads back ---------------------------------------------------------------


def test_a_lone_carriage_return_in_a_csv_cell_reads_back(run, server, tmp_path):
    (tmp_path / "in.jsonl").write_text(
        json.dumps({"prompt": "10%\r20%\r100% done"}) + "\n"
    )
    server.enqueue(Respond(completion("ok", usage=usage(9, 1, cost=0.4))))
    result = run("-i", "in.jsonl", "--log-file", "u.csv")
    assert result.code == 0
    [record] = tu.LogFile(str(tmp_path / "u.csv"), "csv").read()
    assert record[1]["prompt"] == "10%\r20%\r100% done"
    report = run("report", "--log-file", "u.csv", "--format", "json")
    assert report.stderr == ""
    assert json.loads(report.stdout, parse_float=D)["total"]["cost"] == D("0.4")


def test_resume_sends_each_repeated_prompt_as_often_as_it_is_missing(run, server):
    run("Hi")
    before = len(server.chat_requests)
    result = run("--resume", "--concurrency", "1", stdin="Hi\nHi\nHi\nOther\n")
    assert [r.prompt for r in server.chat_requests[before:]] == ["Hi", "Hi", "Other"]
    assert (
        result.stderr_lines[0]
        == "Resuming: 1 prompt(s) already logged as ok, 3 to send"
    )


@pytest.mark.parametrize(
    "bad",
    [
        '"total_cost": "0.25"',
        '"total_cost": -5',
        '"prompt_tokens": true',
        '"timestamp": "2026-02-30T10:00:00+00:00"',
        '"model_used": "\\udcff"',
    ],
)
def test_report_skips_records_no_call_can_have(run, tmp_path, bad):
    good = {
        "schema_version": 1,
        "timestamp": "2026-03-01T10:00:00+00:00",
        "model": "a/b",
        "status": "ok",
        "prompt_tokens": 10,
        "total_cost": 0.25,
    }
    odd = json.dumps(good)[:-1] + ", " + bad + "}"
    (tmp_path / "usage.jsonl").write_text(json.dumps(good) + "\n" + odd + "\n")
    result = run("report", "--format", "json", "--timezone", "UTC")
    assert result.code == 0
    total = json.loads(result.stdout, parse_float=D)["total"]
    if "model_used" in bad:  # an odd name is still a call
        assert total["calls"] == 2
    else:
        assert (total["calls"], total["cost"]) == (1, D("0.25"))
        assert "line 2 has a timestamp or numbers no call can have" in result.stderr


def test_a_timestamp_without_an_offset_is_taken_as_utc(run, tmp_path):
    now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat()
    record = {"timestamp": now, "status": "ok", "total_cost": 0.25, "prompt_tokens": 1}
    (tmp_path / "usage.jsonl").write_text(json.dumps(record) + "\n")
    result = run("budget", "--json", "--timezone", "UTC")
    assert json.loads(result.stdout, parse_float=D)["spent"] == D("0.25")


@pytest.mark.parametrize(
    "command", [("report",), ("budget",), ("chart", "--out", "c.png")]
)
def test_a_log_path_that_is_a_folder_is_a_clear_error(run, tmp_path, command):
    (tmp_path / "folder.jsonl").mkdir()
    result = run(*command, "--log-file", "folder.jsonl")
    assert result.code == 2
    assert "is not a file" in result.stderr


def test_chart_into_a_missing_folder_is_a_clear_error(run, tmp_path):
    result = run("chart", "--out", "nowhere/c.png")
    assert result.code == 2
    assert result.stderr_lines[-1] == (
        "track_usage: error: cannot write nowhere/c.png: No such file or directory"
    )


# --- pricing update, entry by entry ---------------------------------------------------


def test_models_without_prices_are_skipped_not_booked_at_zero(run, server, tmp_path):
    listing = {
        "data": [
            {"id": "a/ok", "pricing": {"prompt": "0.000001", "completion": "0.000002"}},
            {"id": "a/none"},
            {"id": "a/null", "pricing": None},
            {"id": "a/tbd", "pricing": "TBD"},
            {
                "id": "a/fee",
                "pricing": {"prompt": "0", "completion": "0", "request": "-1"},
            },
            {
                "id": "a/tier",
                "pricing": {
                    "prompt": "0",
                    "completion": "0",
                    "overrides": [{"min_prompt_tokens": None}],
                },
            },
            {"id": "a/ok", "pricing": {"prompt": "0.5", "completion": "0.5"}},
        ]
    }
    (tmp_path / "models.json").write_text(json.dumps(listing))
    server.models_path = str(tmp_path / "models.json")
    result = run("pricing", "update", "--pricing", "new.json")

    assert result.code == 0
    assert set(tu.load_pricing(str(tmp_path / "new.json"))) == {"a/ok"}
    assert tu.load_pricing(str(tmp_path / "new.json"))["a/ok"].prompt == D("0.001")
    assert result.stdout.splitlines()[1:] == [
        "  skipped a/none (no price listed)",
        "  skipped a/null (no price listed)",
        "  skipped a/tbd (no price listed)",
        "  skipped a/fee (negative fee per call '-1')",
        "  skipped a/tier (min_prompt_tokens None is not a token count)",
        "  skipped a/ok (listed twice; the first is kept)",
    ]


# --- the optimizer --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "    def f():\n        return 1",
        "Run `a  b` as it is",
        "name\t\tage\nann\t\t3",
        "[ ] buy milk\n[ ] call mum",
        "~~~\nx  =  1\n~~~",
        "  ```\n  x  =  1\n  ```",
        "apple\napple\napple",
        "[" * 5000 + "]" * 5000,
    ],
)
def test_the_optimizer_leaves_meaningful_text_alone(text):
    assert tu.optimize_prompt(text) == text


def test_a_whole_file_can_be_one_prompt(run, server, tmp_path):
    Path(tmp_path / "long.txt").write_text("Line one.\nLine two.\n")
    run("-i", "long.txt", "--input-format", "whole")
    assert [r.prompt for r in server.chat_requests] == ["Line one.\nLine two."]
