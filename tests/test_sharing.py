"""Many processes and threads appending to one log at once."""

from __future__ import annotations

import csv
import json

import pytest

import track_usage as tu
from conftest import spawn


@pytest.mark.parametrize("log_name", ["shared.jsonl", "shared.csv"])
def test_eight_processes_append_fifty_records_each_intact(tmp_path, server, log_name):
    args = ("--log-file", log_name, "--concurrency", "4")
    procs = [
        spawn(
            tmp_path,
            server,
            *args,
            stdin="".join(f"w{worker}-p{n}, with a comma\n" for n in range(50)),
        )
        for worker in range(8)
    ]
    assert [proc.wait(120) for proc in procs] == [0] * 8

    path = tmp_path / log_name
    if log_name.endswith(".csv"):
        lines = path.read_text(encoding="utf-8").splitlines()
        assert sum(line.startswith("schema_version,") for line in lines) == 1
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        assert all(len(row) == len(tu.LOG_FIELDS) for row in rows)
        records = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    else:
        records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 400
    expected = {f"w{w}-p{n}, with a comma" for w in range(8) for n in range(50)}
    assert {record["prompt"] for record in records} == expected
    assert {record["status"] for record in records} == {"ok"}
