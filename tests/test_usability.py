"""Small things a new user meets: messages, defaults and warnings."""

from __future__ import annotations

import json

from fake_openrouter import Respond


def test_after_a_budget_refusal_no_later_prompt_is_sent(run, server, tmp_path):
    items = [
        {"prompt": "small"},
        {"prompt": "huge", "max_tokens": 1_000_000},
        {"prompt": "small again"},
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    result = run("-i", "in.jsonl", "--daily-budget", "0.01", "--concurrency", "1")
    assert result.code == 3
    assert [r.prompt for r in server.chat_requests] == ["small"]
    assert result.stderr_lines[-1] == "Not sent: line 2, line 3"


def test_skipped_input_lines_are_counted_in_the_summary(run, server, tmp_path):
    (tmp_path / "in.jsonl").write_text('{"prompt": "a"}\nnot json\n{"prompt": "b"}\n')
    result = run("-i", "in.jsonl")
    assert result.stderr_lines[-1].endswith("; 1 input line(s) skipped")


def test_the_usage_line_names_the_price_table_used(run, server, tmp_path):
    (tmp_path / "mine.json").write_text(
        '{"unit": "USD per 1K tokens", "models": {"openai/gpt-4o-mini":'
        ' {"prompt": 0.001, "completion": 0.001}}}'
    )
    result = run("Hi", "--pricing", "mine.json")
    assert result.stderr_lines[-1].endswith("(from mine.json)")


def test_a_cache_folder_means_the_cache(run, server):
    run("Hi", "--cache-dir", "c")
    run("Hi", "--cache-dir", "c")
    assert len(server.chat_requests) == 1


def test_a_daily_quota_says_to_wait_for_the_reset(run, server):
    quota = {
        "error": {"code": 429, "message": "Rate limit exceeded: free-models-per-day"}
    }
    server.enqueue(Respond(quota, 429))
    result = run("Hi")
    assert result.stderr_lines[0].endswith(
        "(a daily quota is used up: wait for it to reset, or use another model)"
    )


def test_reading_a_log_that_is_not_there_says_so(run):
    result = run("report", "--log-file", "nope.jsonl")
    assert result.code == 0
    assert result.stderr_lines == [
        "track_usage: warning: there is no log at nope.jsonl yet: nothing has been"
        " logged there"
    ]


def test_pricing_without_an_action_says_what_to_do(run):
    result = run("pricing")
    assert result.code == 2
    assert result.stderr_lines == [
        "track_usage: error: say what to do: pricing show [MODEL ...], or pricing"
        " update"
    ]


def test_chart_writes_svg_and_refuses_unknown_formats(run, tmp_path):
    assert run("chart", "--out", "c.svg").code == 0
    assert (tmp_path / "c.svg").read_bytes().lstrip().startswith(b"<?xml")
    result = run("chart", "--out", "c.gif")
    assert result.code == 2
    assert "chart writes png, svg, pdf, html, htm files; c.gif is none" in result.stderr


def test_compare_of_several_prompts_says_they_are_summed(run):
    result = run("--compare", "openai/gpt-4o-mini", stdin="a\nb\n")
    assert result.stdout.splitlines()[0] == "All 2 prompts together:"


def test_optimize_counts_like_a_dry_run(run):
    optimized = run("optimize", "Hi")
    dry = run("Hi", "--dry-run", "--json")
    assert f"Prompt tokens: {json.loads(dry.stdout)['prompt_tokens_estimated']} ->" in (
        optimized.stderr
    )


def test_the_local_zone_reads_well(run):
    result = run("budget", "--json")
    assert result.code == 0
    assert json.loads(result.stdout)["timezone"].endswith(", local time")


def test_a_stream_request_to_a_server_that_streams_canned_replies(run, server):
    server.enqueue()
    result = run("Hi", "--stream")
    assert result.stdout == (
        "This is a canned reply from the loopback test server, not from a model.\n"
    )
    assert server.chat_requests[0].json()["stream"] is True
