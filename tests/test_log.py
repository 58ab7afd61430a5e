"""The log files: CSV and JSONL bytes, headers, and appends after a crash."""

from __future__ import annotations

import csv
import json
from decimal import Decimal as D

import pytest
from fake_openrouter import Respond, completion

import track_usage as tu

TRICKY = [
    'He said "hi", then left',
    "line one\nline two",
    '=HYPERLINK("http://x")',
    "+1 and -1",
    "@SUM(A1)",
    "\tindented",
    "'quoted",
    "-",
]


def usage(prompt: int, completion_: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion_}


def test_csv_has_one_header_and_reads_back_tricky_prompts(run, server, tmp_path):
    prompts = [p for p in TRICKY if "\n" not in p]
    result = run("--log-file", "usage.csv", stdin="\n".join(prompts))
    result2 = run("line one\nline two", "--log-file", "usage.csv")
    assert result.code == result2.code == 0

    text = result.log.read_text(encoding="utf-8")
    assert text.count("schema_version,") == 1
    rows = list(csv.DictReader(result.log.open(newline="", encoding="utf-8")))
    assert len(rows) == len(prompts) + 1
    logged = [tu.parse_csv_cell("prompt", row["prompt"]) for row in rows]
    assert logged == [*prompts, "line one\nline two"]


@pytest.mark.parametrize(
    ("prompt", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("'x", "''x"),
        ("plain, with comma", '"plain, with comma"'),
        ('say "hi"', '"say ""hi"""'),
    ],
)
def test_csv_cells_defuse_formulas_byte_for_byte(run, server, prompt, cell):
    result = run(prompt, "--log-file", "usage.csv")
    data_line = result.log.read_text(encoding="utf-8").splitlines()[1]
    assert f",{cell}," in data_line


def test_jsonl_keeps_text_exactly_as_sent(run, server):
    result = run("=1+1")
    assert result.records()[0]["prompt"] == "=1+1"


@pytest.mark.parametrize("existing", ["", "\n", "HEADER", "HEADER\n"])
def test_csv_header_is_written_exactly_once(run, server, tmp_path, existing):
    header = ",".join(tu.LOG_FIELDS)
    (tmp_path / "usage.csv").write_text(existing.replace("HEADER", header))
    run("one", "--log-file", "usage.csv")
    run("two", "--log-file", "usage.csv")

    lines = (tmp_path / "usage.csv").read_text().splitlines()
    assert [line for line in lines if line.startswith("schema_version")] == [header]
    rows = list(csv.DictReader(line for line in lines if line))
    assert [row["prompt"] for row in rows] == ["one", "two"]


def test_csv_appends_follow_the_header_in_the_file(run, server, tmp_path):
    (tmp_path / "usage.csv").write_text("timestamp,model,prompt,total_cost\n")
    server.enqueue(Respond(completion("ok", usage={**usage(10, 0), "cost": 0.5})))
    run("Hi, you", "--log-file", "usage.csv")

    rows = list(csv.reader((tmp_path / "usage.csv").open(newline="")))
    assert rows[0] == ["timestamp", "model", "prompt", "total_cost"]
    assert rows[1][1:] == ["openai/gpt-4o-mini", "Hi, you", "0.5"]


def test_a_csv_file_of_something_else_is_refused(run, server, tmp_path):
    (tmp_path / "usage.csv").write_text("name,age\nann,3\n")
    result = run("Hi", "--log-file", "usage.csv")
    assert result.code == 2
    assert "usage.csv is not a track_usage CSV log" in result.stderr
    assert (tmp_path / "usage.csv").read_text() == "name,age\nann,3\n"


def test_jsonl_append_after_a_cut_off_record_starts_a_new_line(run, server, tmp_path):
    (tmp_path / "usage.jsonl").write_text('{"schema_version": 1, "prompt": "cut')
    run("next")

    lines = (tmp_path / "usage.jsonl").read_text().split("\n")
    assert lines[0] == '{"schema_version": 1, "prompt": "cut'
    assert json.loads(lines[1])["prompt"] == "next"
    assert lines[2] == ""


def test_csv_append_after_a_record_cut_inside_quotes(run, server, tmp_path):
    header = ",".join(tu.LOG_FIELDS)
    (tmp_path / "usage.csv").write_text(f'{header}\n1,2026-01-01,,m,,,ok,,,"cut, in')
    run("next", "--log-file", "usage.csv")

    rows = list(csv.reader((tmp_path / "usage.csv").open(newline="")))
    assert rows[1][-1] == "cut, in"
    assert len(rows[2]) == len(tu.LOG_FIELDS)
    assert rows[2][tu.LOG_FIELDS.index("prompt")] == "next"


def test_amounts_are_plain_numbers_never_exponents(run, server):
    server.enqueue(Respond(completion("ok", usage={**usage(9, 0), "cost": 1.35e-6})))
    result = run("Hi")
    assert '"reported_cost": 0.00000135,' in result.log.read_text()
    assert result.records()[0]["reported_cost"] == D("0.00000135")


def test_a_reply_with_a_lone_surrogate_still_gives_valid_utf8(run, server):
    body = json.dumps(completion("bad \ud800 char", usage=usage(9, 3)))
    server.enqueue(Respond(body))
    result = run("Hi", "--log-file", "usage.jsonl")
    assert (result.code, result.stdout) == (0, "bad ? char\n")
    line = result.log.read_bytes().decode("utf-8")
    assert json.loads(line)["response"] == "bad \ud800 char"
