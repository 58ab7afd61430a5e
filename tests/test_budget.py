"""The daily budget: refusals, the day in a time zone, reservations that hold."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest

import track_usage as tu
from conftest import spawn
from fake_openrouter import Respond, completion

UTC = timezone.utc


def usage(prompt: int, completion_: int, **extra: object) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion_, **extra}


def write_log(path: Path, *records: dict) -> None:
    with path.open("a", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")


def logged(at: datetime, cost: str | None, **extra: object) -> dict:
    """A minimal record, as an earlier version (schema 1) would have written it."""
    return {
        "schema_version": 1,
        "timestamp": at.isoformat(timespec="milliseconds"),
        "model": "openai/gpt-4o-mini",
        "status": "ok",
        "prompt_tokens": 10,
        "total_cost": None if cost is None else float(cost),
        **extra,
    }


def budget_json(capsys, *args: str) -> dict:
    assert tu.main(["budget", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


# --- the day, in a time zone ---------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "now", "today", "counted"),
    [
        # 23:30 in New York on 7 March (04:30 UTC on the 8th)
        ("America/New_York", "2026-03-08T04:30:00", "2026-03-07", ["b", "c"]),
        # 00:10 in New York on 8 March: a new day, the DST day (23 hours long)
        ("America/New_York", "2026-03-08T05:10:00", "2026-03-08", ["d"]),
        # 23:59 in Kolkata (UTC+05:30)
        ("Asia/Kolkata", "2026-03-07T18:29:00", "2026-03-07", ["a", "b"]),
        ("UTC", "2026-03-08T04:30:00", "2026-03-08", ["c", "d"]),
    ],
)
def test_the_budget_day_is_the_calendar_day_in_the_chosen_zone(
    tmp_path, monkeypatch, capsys, zone, now, today, counted
):
    costs = {"a": "0.001", "b": "0.002", "c": "0.004", "d": "0.008"}
    starts = {
        "a": "2026-03-06T18:30:00",  # 00:00 on the 7th in Kolkata; the 6th in NY
        "b": "2026-03-07T05:00:00",  # 00:00 on the 7th in New York
        "c": "2026-03-08T04:29:00",  # 23:29 on the 7th in New York
        "d": "2026-03-08T05:00:00",  # 00:00 on the 8th in New York (EST still)
    }
    log = tmp_path / "usage.jsonl"
    for name in "abcd":
        write_log(
            log,
            logged(
                datetime.fromisoformat(starts[name]).replace(tzinfo=UTC),
                costs[name],
                prompt=name,
            ),
        )
    monkeypatch.setattr(
        tu, "utc_now", lambda: datetime.fromisoformat(now).replace(tzinfo=UTC)
    )

    result = budget_json(capsys, "--log-file", str(log), "--timezone", zone)

    assert result["day"] == today
    assert result["timezone"] == zone
    assert D(str(result["spent"])) == sum(D(costs[n]) for n in counted)
    assert result["calls"] == len(counted)


def test_local_time_is_the_default_zone(tmp_path, capsys):
    result = budget_json(capsys, "--log-file", str(tmp_path / "none.jsonl"))
    assert result["timezone"].endswith(", local time")


def test_an_unknown_zone_is_a_clear_error(run):
    result = run("budget", "--timezone", "Mars/Olympus")
    assert result.code == 2
    assert result.stderr_lines == [
        'track_usage: error: unknown time zone "Mars/Olympus": use an IANA name such'
        " as Europe/Berlin (on Windows, pip install tzdata first)"
    ]


# --- what today's spend is made of ------------------------------------------------


def test_budget_reports_spend_unpriced_calls_and_skips_corrupt_lines(run, tmp_path):
    now = datetime.now(UTC)
    log = tmp_path / "usage.jsonl"
    write_log(log, logged(now, "0.25"), logged(now, None))
    with log.open("a") as f:
        f.write('{"schema_version": 2, "timestamp": "cut short\n')
    write_log(log, logged(now, "0.5"), logged(now - timedelta(days=3), "9"))

    result = run("budget", "--daily-budget", "2", "--timezone", "UTC")

    assert result.code == 0
    assert result.stderr_lines == [
        f"track_usage: warning: {log} line 3 is not a whole record (cut short by a"
        " crash, or edited?); skipped"
    ]
    assert result.stdout.splitlines() == [
        f"Day:        {now.date()} (UTC)",
        "Spent:      $0.750000 in 3 call(s)",
        "Unpriced:   1 call(s) with no known cost, not counted",
        "Limit:      $2.000000",
        "Remaining:  $1.250000",
    ]
    again = run("budget", "--json", "--daily-budget", "2", "--timezone", "UTC")
    assert again.stderr == ""  # read once: later checks start after that line
    assert json.loads(again.stdout) == {
        "day": str(now.date()),
        "timezone": "UTC",
        "spent": 0.75,
        "limit": 2,
        "remaining": 1.25,
        "calls": 3,
        "unpriced_calls": 1,
        "unpriced_counted_as_reserved": 0,
        "reserved": 0,
    }


def test_budget_reads_csv_logs_too(run, server, tmp_path):
    server.enqueue(Respond(completion("ok", usage=usage(9, 1, cost=0.125))))
    run("Hi", "--log-file", "usage.csv")
    result = run("budget", "--log-file", "usage.csv", "--json", "--timezone", "UTC")
    assert json.loads(result.stdout)["spent"] == 0.125


# --- refusals ---------------------------------------------------------------------


def test_a_call_that_does_not_fit_is_refused_with_exit_3(run, server):
    result = run("Hi", "--daily-budget", "0.0001", "--timezone", "UTC")

    assert result.code == 3
    today = datetime.now(UTC).date()
    assert result.stderr_lines == [
        f"track_usage: error: daily budget: $0.000000 of $0.000100 spent on {today}"
        " (UTC), $0.000100 left; the call (8 prompt tokens and up to 1,024 output"
        " tokens of openai/gpt-4o-mini) needs up to $0.000616. Lower --max-tokens,"
        " or raise --daily-budget"
    ]
    assert server.requests == []


def test_an_unpriced_model_cannot_be_reserved(run, server):
    result = run("Hi", "-m", "vendor/new", env={"DAILY_BUDGET_USD": "5"})
    assert result.code == 3
    assert 'no price for "vendor/new"' in result.stderr
    assert "under a daily budget every call needs a price to reserve" in result.stderr
    assert server.requests == []


def test_spend_already_logged_today_counts(run, server, tmp_path):
    write_log(tmp_path / "usage.jsonl", logged(datetime.now(UTC), "0.9995"))
    result = run("Hi", "--daily-budget", "1", "--timezone", "UTC")
    assert result.code == 3
    assert "$0.999500 of $1.000000 spent" in result.stderr


def cost_of_a_full_reservation(request) -> Respond:
    # "Hi" on gpt-4o-mini with 1,000 output tokens reserves $0.0006012; bill
    # $0.0006, the most a call may cost within its reservation.
    return Respond(completion("ok", usage=usage(8, 1000, cost=0.0006)))


def test_waits_for_calls_in_flight_instead_of_refusing(run, server):
    server.responder = lambda request: Respond(
        completion("ok", usage=usage(8, 10, cost=0.00001)), delay_s=0.3
    )
    # room for two reservations at a time, but every call costs far less
    result = run(
        "--daily-budget",
        "0.0013",
        "--max-tokens",
        "1000",
        "--concurrency",
        "4",
        "--timezone",
        "UTC",
        stdin="a\nb\nc\nd\ne\nf\n",
    )
    assert result.code == 0
    assert len(result.records()) == 6


def test_alert_once_when_spend_passes_the_threshold(run, server):
    server.responder = cost_of_a_full_reservation
    result = run(
        "--daily-budget",
        "0.002",
        "--max-tokens",
        "1000",
        "--concurrency",
        "1",
        "--timezone",
        "UTC",
        stdin="a\nb\nc\nd\n",
    )
    assert result.code == 3
    alerts = [line for line in result.stderr_lines if "has passed" in line]
    assert alerts == [
        "track_usage: warning: today's spend, $0.001800, has passed $0.001600 of the"
        " $0.002000 daily budget"
    ]
    assert [r["prompt"] for r in result.records()] == ["a", "b", "c"]
    assert result.stderr_lines[-1] == "Not sent: line 4"


def test_a_bill_above_its_reservation_is_reported_in_the_summary(run, server):
    server.enqueue(Respond(completion("ok", usage=usage(8, 1000, cost=0.001))))
    result = run(
        "Hi", "--daily-budget", "1", "--max-tokens", "1000", "--timezone", "UTC"
    )
    assert result.code == 0
    assert result.stderr_lines[-1] == (
        "Over the reservations by $0.000393: some calls cost more than the table"
        " price allowed for (a pricier endpoint, or a longer chat template than"
        " estimated)"
    )


def test_reservations_of_a_process_that_died_are_dropped(run, server, tmp_path):
    log = tmp_path / "usage.jsonl"
    log.write_text("")
    state = {"format": 1, "reservations": {"4242-deadbeef/1": "0.9"}}
    (tmp_path / "usage.jsonl.budget.json").write_text(json.dumps(state))

    result = run("Hi", "--daily-budget", "1", "--timezone", "UTC")
    assert result.code == 0
    state = json.loads((tmp_path / "usage.jsonl.budget.json").read_text())
    assert state["reservations"] == {}


# --- many processes at once --------------------------------------------------------


def test_parallel_processes_never_push_the_day_over_a_tight_budget(tmp_path, server):
    server.responder = lambda request: Respond(
        cost_of_a_full_reservation(request).body, delay_s=0.2
    )
    budget = D("0.003")  # room for 4 calls of $0.0006 reserved at $0.0006012
    procs = [
        spawn(
            tmp_path,
            server,
            "--daily-budget",
            str(budget),
            "--max-tokens",
            "1000",
            "--concurrency",
            "3",
            "--timezone",
            "UTC",
            stdin="a\nb\nc\n",
        )
        for _ in range(4)
    ]
    codes = [proc.wait(60) for proc in procs]

    records = tu.LogFile(str(tmp_path / "usage.jsonl"), "jsonl").read()
    booked = [record["total_cost"] for _, record in records]
    assert len(booked) == 4
    assert sum(booked) == D("0.0024") <= budget
    assert len(server.chat_requests) == 4
    assert sorted(codes) == [0, 3, 3, 3] or sorted(codes).count(3) >= 3
