"""The log files: CSV and JSONL bytes, headers, and appends after a crash."""

from __future__ import annotations

import csv
import json
from decimal import Decimal as D

import pytest

import track_usage as tu
from fake_openrouter import Respond, completion

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
    # calls run in parallel and are logged as they finish: order by input line
    rows[:-1] = sorted(rows[:-1], key=lambda row: int(row["input_line"]))
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


def test_appends_to_an_older_csv_follow_its_header(run, server, tmp_path):
    older = [name for name in tu.LOG_FIELDS if name not in tu.SCHEMA_ADDITIONS[2]]
    (tmp_path / "usage.csv").write_text(",".join(older) + "\n")
    server.enqueue(
        Respond(completion("ok", usage={**usage(10, 0), "cost": 0.5})),
        Respond(completion("ok", usage={**usage(10, 0), "cost": 0.25})),
    )
    result = run("--log-file", "usage.csv", "--concurrency", "1", stdin="Hi, you\nb")

    notes = [line for line in result.stderr_lines if "earlier version" in line]
    assert notes == [
        "track_usage: warning: usage.csv was started by an earlier version and has"
        " no column for input_line, input_id, attempts, prompt_hash; those fields"
        " are left out of it (start a new CSV file to keep them)"
    ]
    rows = list(csv.DictReader((tmp_path / "usage.csv").open(newline="")))
    assert list(rows[0]) == older
    assert [(r["prompt"], r["total_cost"]) for r in rows] == [
        ("Hi, you", "0.5"),
        ("b", "0.25"),
    ]


@pytest.mark.parametrize(
    "content",
    [
        "name,age\nann,3\n",
        "timestamp,model,prompt,response\n2026-01-01,m,p,r\n",  # shares some names
        "schema_version,timestamp,request_id,mo",  # a header cut short
    ],
)
def test_a_csv_file_of_something_else_is_refused(run, server, tmp_path, content):
    (tmp_path / "usage.csv").write_text(content)
    result = run("Hi", "--log-file", "usage.csv")
    assert result.code == 2
    assert "usage.csv is not a track_usage CSV log" in result.stderr
    assert (tmp_path / "usage.csv").read_text() == content
    assert server.requests == []


def test_a_csv_header_with_a_byte_order_mark_is_recognised(run, server, tmp_path):
    (tmp_path / "usage.csv").write_text("\ufeff" + ",".join(tu.LOG_FIELDS) + "\n")
    run("Hi", "--log-file", "usage.csv")
    rows = list(
        csv.reader((tmp_path / "usage.csv").open(newline="", encoding="utf-8-sig"))
    )
    assert len(rows) == 2 and rows[1][0] == str(tu.SCHEMA_VERSION)


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
