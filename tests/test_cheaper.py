"""Cheaper calls: --compare, --optimize and the optimize preview, --cache."""

from __future__ import annotations

import json
from decimal import Decimal as D

import tiktoken

from fake_openrouter import Respond, completion

QUANTUM = "Explain quantum computing in simple terms."
PADDED = (
    "Please   summarise   this:   \n\n\n\n"
    '{\n  "name": "x",\n  "items": [1,  2,  3]\n}\n'
    "This sentence was pasted twice by accident.\n"
    "This sentence was pasted twice by accident.\n"
    "Votes:\nyes\nyes\nno\n"
    "```python\ndef f():\n    return  1\n```\n"
)
OPTIMIZED = (
    'Please summarise this:\n\n{"name":"x","items":[1,2,3]}\n'
    "This sentence was pasted twice by accident.\n"
    "Votes:\nyes\nyes\nno\n"  # short repeated lines are data: kept
    "```python\ndef f():\n    return  1\n```"
)


def test_compare_lists_models_cheapest_first(run, server):
    models = "openai/gpt-4o,vendor/none,anthropic/claude-haiku-4.5,openai/gpt-4o-mini"
    result = run(QUANTUM, "--compare", models, "--json")

    assert result.code == 0
    assert server.requests == []
    rows = [json.loads(line, parse_float=D) for line in result.stdout.splitlines()]
    assert [
        (r["model"], r["prompt_tokens"], r["cost_min"], r["cost_max"]) for r in rows
    ] == [
        ("openai/gpt-4o-mini", 14, D("0.0000021"), D("0.0006165")),
        ("anthropic/claude-haiku-4.5", 15, D("0.000015"), D("0.005135")),
        ("openai/gpt-4o", 14, D("0.000035"), D("0.010275")),
        ("vendor/none", 15, None, None),
    ]
    assert [r["tokenizer_approx"] for r in rows] == [False, True, False, True]


def test_compare_table_marks_estimates(run):
    result = run(QUANTUM, "--compare", "anthropic/claude-haiku-4.5,openai/gpt-4o-mini")
    assert result.stdout.splitlines() == [
        "model                       prompt tokens  cost, prompt only"
        "  with up to 1,024 output tokens",
        "openai/gpt-4o-mini          14             $0.000002          $0.000617",
        "anthropic/claude-haiku-4.5  ~15            $0.000015          $0.005135",
        "~ counted with a stand-in tokenizer: an estimate",
    ]


def test_compare_sums_a_whole_input_file(run):
    result = run(
        "--compare", "openai/gpt-4o-mini", "--json", stdin=f"{QUANTUM}\n{QUANTUM}\n"
    )
    assert json.loads(result.stdout)["prompt_tokens"] == 28


def test_optimize_preview_saves_tokens_and_keeps_code_blocks(run):
    result = run("optimize", PADDED)

    assert result.code == 0
    assert result.stdout == OPTIMIZED + "\n"
    encoding = tiktoken.get_encoding("o200k_base")
    framing = 3 + 1 + 3  # one user message, as a dry run counts it
    before, after = (
        len(encoding.encode(text)) + framing for text in (PADDED, OPTIMIZED)
    )
    assert after < before
    saved = D(before - after) * D("0.00015") / 1000
    assert result.stderr_lines == [
        f"Prompt tokens: {before} -> {after} ({after - before}) with o200k_base;"
        f" ${saved.quantize(D('0.000001'), 'ROUND_HALF_UP')} less per call on"
        " openai/gpt-4o-mini"
    ]


def test_optimize_flag_sends_the_rewrite_and_logs_both_counts(run, server, tmp_path):
    (tmp_path / "in.jsonl").write_text(json.dumps({"prompt": PADDED}) + "\n")
    result = run("-i", "in.jsonl", "--optimize")

    assert server.chat_requests[0].prompt == OPTIMIZED
    [record] = result.records()
    assert record["prompt"] == OPTIMIZED
    assert record["prompt_tokens_unoptimized"] > record["prompt_tokens_estimated"]


def test_cache_hit_sends_nothing_costs_nothing_and_counts_the_saving(
    run, server, tmp_path
):
    server.enqueue(
        Respond(
            completion(
                "cached answer",
                usage={"prompt_tokens": 9, "completion_tokens": 3, "cost": 0.0004},
            )
        )
    )
    first = run("Hi", "--cache", env={"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    second = run("Hi", "--cache", env={"XDG_CACHE_HOME": str(tmp_path / "xdg")})

    assert len(server.chat_requests) == 1
    assert first.stdout == second.stdout == "cached answer\n"
    assert second.stderr_lines == [
        "Input tokens: 0, Output tokens: 0, Cost: $0.000000 (answered from the local"
        " cache; saved $0.000400)"
    ]
    hit = second.records()[1]
    assert (hit["cache_hit"], hit["total_cost"], hit["saved_cost"]) == (
        True,
        0,
        D("0.0004"),
    )
    assert (hit["cost_source"], hit["attempts"]) == ("cache", 0)
    assert list((tmp_path / "xdg" / "track_usage").rglob("*.json"))

    report = run("report", "--by", "model", "--format", "json")
    total = json.loads(report.stdout, parse_float=D)["total"]
    assert (total["cache_hits"], total["saved"], total["cost"]) == (
        1,
        D("0.0004"),
        D("0.0004"),
    )


def test_a_cache_hit_needs_no_budget(run, server, tmp_path):
    run("Hi", "--cache", "--cache-dir", "c")
    result = run("Hi", "--cache", "--cache-dir", "c", "--daily-budget", "0.000001")
    assert result.code == 0
    assert len(server.chat_requests) == 1


def test_the_cache_key_includes_model_and_max_tokens(run, server):
    run("Hi", "--cache", "--cache-dir", "c")
    run("Hi", "--cache", "--cache-dir", "c", "--max-tokens", "5")
    run("Hi", "--cache", "--cache-dir", "c", "-m", "openai/gpt-4o")
    assert len(server.chat_requests) == 3


def test_failed_calls_are_not_cached(run, server):
    server.enqueue(Respond({"error": {"code": 400, "message": "no"}}, 400))
    run("Hi", "--cache", "--cache-dir", "c")
    run("Hi", "--cache", "--cache-dir", "c")
    assert len(server.chat_requests) == 2
