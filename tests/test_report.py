"""report: totals by day, week, month and model, from JSONL and CSV logs."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal as D
from pathlib import Path

import pytest

import track_usage as tu


def record(at: str, model: str, cost: str | None, **extra: object) -> dict:
    """A record as this version writes it."""
    row = dict.fromkeys(tu.LOG_FIELDS)
    row.update(
        schema_version=tu.SCHEMA_VERSION,
        timestamp=at,
        model=model,
        model_used=model,
        status="ok",
        cache_hit=False,
        prompt_tokens=100,
        completion_tokens=10,
        cached_tokens=0,
        reasoning_tokens=0,
        total_cost=None if cost is None else D(cost),
        token_source="api",
        prompt_tokens_estimated=90,
        completion_tokens_estimated=12,
        prompt="a prompt, with text",
        response='a reply with "quotes"',
    )
    row.update(extra)
    return row


# New York days: 2026-03-07 runs from 05:00 UTC on the 7th to 05:00 UTC on the 8th.
RECORDS = [
    record("2026-03-07T04:59:00.000+00:00", "openai/gpt-4o-mini", "0.001"),  # NY 6th
    record("2026-03-07T05:00:00.000+00:00", "openai/gpt-4o-mini", "0.002"),
    record("2026-03-07T12:00:00.000+00:00", "anthropic/claude-haiku-4.5", "0.004"),
    record("2026-03-07T13:00:00.000+00:00", "vendor/unpriced", None),
    record(
        "2026-03-07T14:00:00.000+00:00",
        "openai/gpt-4o-mini",
        None,
        status="error",
        error="OpenRouter error 500: boom",
        prompt_tokens=None,
        completion_tokens=None,
        token_source=None,
    ),
    record(
        "2026-03-08T04:59:00.000+00:00",
        "openai/gpt-4o-mini",
        "0",
        cache_hit=True,
        saved_cost=D("0.0005"),
        prompt_tokens=0,
        completion_tokens=0,
        token_source="cache",
    ),
    record("2026-03-08T05:30:00.000+00:00", "anthropic/claude-haiku-4.5", "0.008"),
]
OLDER = {  # written by an earlier version: other field order, fewer fields
    "schema_version": 1,
    "timestamp": "2026-03-07T20:00:00.000+00:00",
    "request_id": "gen-old",
    "model": "openai/gpt-4o-mini",
    "model_used": "openai/gpt-4o-mini-2024-07-18",
    "status": "ok",
    "error": None,
    "prompt": "old",
    "prompt_tokens": 50,
    "completion_tokens": 5,
    "total_cost": 0.0000105,
    "token_source": "api",
    "prompt_tokens_estimated": 50,
    "completion_tokens_estimated": 5,
}


def write_jsonl(path: Path, extra_lines: tuple[str, ...] = ()) -> Path:
    lines = [tu.record_json(r) for r in RECORDS] + [json.dumps(OLDER), *extra_lines]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def report(path: Path, *by: str, **options: str) -> tu.Report:
    zone = tu.load_zone("America/New_York")
    log = tu.LogFile(str(path), "csv" if path.suffix == ".csv" else "jsonl")
    return tu.Report(by, zone, **options).read(log)


def totals(report: tu.Report) -> dict[tuple, dict]:
    return {key: tu.totals_dict(row) for key, row in report.groups.items()}


def test_totals_per_day_and_model_in_a_non_utc_zone(tmp_path):
    result = report(write_jsonl(tmp_path / "usage.jsonl"), "day", "model")

    rows = totals(result)
    assert set(rows) == {
        ("2026-03-06", "openai/gpt-4o-mini"),
        ("2026-03-07", "openai/gpt-4o-mini"),
        ("2026-03-07", "anthropic/claude-haiku-4.5"),
        ("2026-03-07", "vendor/unpriced"),
        ("2026-03-07", "openai/gpt-4o-mini-2024-07-18"),
        ("2026-03-08", "anthropic/claude-haiku-4.5"),
    }
    mini = rows[("2026-03-07", "openai/gpt-4o-mini")]
    assert (mini["calls"], mini["failed"], mini["cost"]) == (3, 1, D("0.002"))
    assert (mini["cache_hits"], mini["saved"]) == (1, D("0.0005"))
    assert (mini["prompt_tokens"], mini["completion_tokens"]) == (100, 10)
    unpriced = rows[("2026-03-07", "vendor/unpriced")]
    assert (unpriced["unpriced_calls"], unpriced["unpriced_tokens"]) == (1, 110)
    assert unpriced["cost"] is None  # never summed as $0
    assert rows[("2026-03-07", "openai/gpt-4o-mini-2024-07-18")]["cost"] == D(
        "0.0000105"
    )
    total = tu.totals_dict(result.total)
    assert total["calls"] == 8
    assert total["cost"] == D("0.0150105")
    assert (total["unpriced_calls"], total["failed"]) == (1, 1)


@pytest.mark.parametrize(
    ("by", "keys"),
    [
        (("week",), {("2026-W10",): 8}),
        (("month",), {("2026-03",): 8}),
        (
            ("model",),
            {
                ("openai/gpt-4o-mini",): 4,
                ("anthropic/claude-haiku-4.5",): 2,
                ("vendor/unpriced",): 1,
                ("openai/gpt-4o-mini-2024-07-18",): 1,
            },
        ),
    ],
)
def test_weeks_months_and_models(tmp_path, by, keys):
    result = report(write_jsonl(tmp_path / "usage.jsonl"), *by)
    assert {key: row["calls"] for key, row in totals(result).items()} == keys


def test_filters_by_date_in_the_zone_and_by_model(tmp_path):
    path = write_jsonl(tmp_path / "usage.jsonl")
    result = report(
        path, "day", since="2026-03-07", until="2026-03-07", model="openai/gpt-4o-mini"
    )
    assert {key: row["calls"] for key, row in totals(result).items()} == {
        ("2026-03-07",): 4  # the dated model id counts as the model
    }


def test_estimate_error_per_model(tmp_path):
    result = report(write_jsonl(tmp_path / "usage.jsonl"), "day")
    errors = {row["model"]: row for row in tu.estimate_rows(result)}
    # estimated 90 of 100 prompt tokens and 12 of 10 completion tokens
    assert errors["anthropic/claude-haiku-4.5"] == {
        "model": "anthropic/claude-haiku-4.5",
        "calls": 2,
        "prompt_mean_error": -0.1,
        "prompt_worst_error": -0.1,
        "completion_mean_error": 0.2,
        "completion_worst_error": 0.2,
    }
    assert "openai/gpt-4o-mini-2024-07-18" in errors  # exact: 0 error
    assert errors["openai/gpt-4o-mini-2024-07-18"]["prompt_worst_error"] == 0


def test_corrupt_lines_are_skipped_with_their_line_number(tmp_path, capsys):
    path = write_jsonl(
        tmp_path / "usage.jsonl", ('{"schema_version": 3, "timest', "", "[1]")
    )
    result = report(path, "day")
    assert tu.totals_dict(result.total)["calls"] == 8
    assert capsys.readouterr().err.splitlines() == [
        f"track_usage: warning: {path} line {n} is not a whole record (cut short by a"
        " crash, or edited?); skipped"
        for n in (9, 11)
    ]


def test_blocks_of_any_size_give_the_same_totals(tmp_path, monkeypatch):
    path = write_jsonl(tmp_path / "usage.jsonl")
    expected = totals(report(path, "day", "model"))
    monkeypatch.setattr(tu, "REPORT_BLOCK_BYTES", 97)  # lines cut across blocks
    assert totals(report(path, "day", "model")) == expected


def test_a_csv_log_gives_the_same_report(tmp_path):
    expected = totals(report(write_jsonl(tmp_path / "usage.jsonl"), "day", "model"))
    rows = [tu.LOG_FIELDS] + [
        [tu.csv_cell(r.get(f)) for f in tu.LOG_FIELDS] for r in RECORDS
    ]
    rows.append([tu.csv_cell(OLDER.get(f)) for f in tu.LOG_FIELDS])
    (tmp_path / "usage.csv").write_bytes(tu.csv_bytes(rows))
    assert totals(report(tmp_path / "usage.csv", "day", "model")) == expected


def run_report(run, tmp_path, *args: str):
    write_jsonl(tmp_path / "usage.jsonl")
    return run("report", "--timezone", "America/New_York", *args)


def test_table_output(run, tmp_path):
    result = run_report(run, tmp_path, "--by", "day")
    assert result.code == 0
    assert result.stdout.splitlines()[:6] == [
        "day         calls  failed  prompt_tokens  completion_tokens       cost"
        "  unpriced_calls  unpriced_tokens  cache_hits      saved",
        "2026-03-06      1       0            100                 10  $0.001000"
        "               0                0           0  $0.000000",
        "2026-03-07      6       1            350                 35  $0.006011"
        "               1              110           1  $0.000500",
        "2026-03-08      1       0            100                 10  $0.008000"
        "               0                0           0  $0.000000",
        "-" * 126,
        "total           8       1            550                 55  $0.015011"
        "               1              110           1  $0.000500",
    ]
    assert "1 call(s) with 110 tokens have no known cost" in result.stdout


def test_json_output(run, tmp_path):
    result = run_report(run, tmp_path, "--by", "month", "--format", "json")
    body = json.loads(result.stdout, parse_float=D)
    assert body["timezone"] == "America/New_York"
    assert body["groups"] == [
        {
            "month": "2026-03",
            "calls": 8,
            "failed": 1,
            "prompt_tokens": 550,
            "completion_tokens": 55,
            "cached_tokens": 0,
            "reasoning_tokens": 0,
            "cost": D("0.0150105"),
            "unpriced_calls": 1,
            "unpriced_tokens": 110,
            "cache_hits": 1,
            "saved": D("0.0005"),
        }
    ]


def test_csv_output(run, tmp_path):
    result = run_report(run, tmp_path, "--by", "model", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["model"], r["calls"], r["cost"]) for r in rows] == [
        ("anthropic/claude-haiku-4.5", "2", "0.012"),
        ("openai/gpt-4o-mini", "4", "0.003"),
        ("openai/gpt-4o-mini-2024-07-18", "1", "0.0000105"),
        ("vendor/unpriced", "1", ""),
    ]


def test_bad_report_options(run):
    result = run("report", "--by", "year")
    assert result.code == 2
    assert "expected some of day, week, month, model, each once, got 'year'" in (
        result.stderr
    )
    assert run("report", "--since", "04/12/2026").code == 2


def test_report_of_a_missing_log_is_empty(run, tmp_path):
    result = run("report", "--log-file", "none.jsonl", "--format", "json")
    assert json.loads(result.stdout)["total"]["calls"] == 0


def test_an_unknown_estimate_is_left_out_not_taken_as_zero(tmp_path):
    rows = [
        record("2026-03-07T12:00:00.000+00:00", "a/m", "0.1"),
        record(
            "2026-03-07T12:00:00.000+00:00",
            "a/m",
            "0.1",
            completion_tokens_estimated=None,  # a reply with no text to count
        ),
    ]
    (tmp_path / "usage.jsonl").write_text(
        "".join(tu.record_json(r) + "\n" for r in rows)
    )
    [errors] = tu.estimate_rows(report(tmp_path / "usage.jsonl", "day"))
    assert (errors["completion_mean_error"], errors["completion_worst_error"]) == (
        0.2,
        0.2,
    )
    assert (errors["prompt_mean_error"], errors["calls"]) == (-0.1, 2)


def test_unpriced_calls_beside_failed_ones_show_no_cost(tmp_path):
    rows = [
        record("2026-03-07T12:00:00.000+00:00", "a/m", None),
        record(
            "2026-03-07T12:01:00.000+00:00",
            "a/m",
            None,
            status="error",
            prompt_tokens=None,
            completion_tokens=None,
            token_source=None,
        ),
    ]
    (tmp_path / "usage.jsonl").write_text(
        "".join(tu.record_json(r) + "\n" for r in rows)
    )
    [row] = totals(report(tmp_path / "usage.jsonl", "day")).values()
    assert (row["calls"], row["failed"], row["unpriced_calls"]) == (2, 1, 1)
    assert row["cost"] is None


def test_a_last_line_without_a_newline_is_read(tmp_path, monkeypatch):
    path = write_jsonl(tmp_path / "usage.jsonl")
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    monkeypatch.setattr(tu, "REPORT_BLOCK_BYTES", 1000)
    assert tu.totals_dict(report(path, "day").total)["calls"] == 8


def test_a_record_cut_short_is_skipped_even_when_its_counts_survive(tmp_path, capsys):
    path = write_jsonl(tmp_path / "usage.jsonl")
    cut = tu.record_json(RECORDS[1])[:-20]  # the texts at the end are cut off
    path.write_text(path.read_text() + cut + "\n")
    assert tu.totals_dict(report(path, "day").total)["calls"] == 8
    assert "line 9 is not a whole record" in capsys.readouterr().err
