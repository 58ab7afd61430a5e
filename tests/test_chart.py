"""chart: a PNG, or a self-contained HTML page, drawn from the log."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import track_usage as tu


def write_month(path) -> None:
    now = datetime.now(timezone.utc)
    lines = []
    for day in range(10):
        for n, model in enumerate(("openai/gpt-4o-mini", "anthropic/claude-haiku-4.5")):
            record = dict.fromkeys(tu.LOG_FIELDS)
            record.update(
                schema_version=tu.SCHEMA_VERSION,
                timestamp=(now - timedelta(days=day, hours=n)).isoformat(),
                model=model,
                model_used=model,
                status="ok",
                prompt_tokens=1000 * (day + 1),
                completion_tokens=300,
                total_cost=D("0.01") * (n + 1),
            )
            lines.append(tu.record_json(record))
    path.write_text("\n".join(lines) + "\n")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_chart_writes_a_png(run, tmp_path):
    write_month(tmp_path / "usage.jsonl")
    result = run(
        "chart", "--out", "usage.png", "--days", "14", "--daily-budget", "0.05"
    )

    assert result.code == 0
    assert result.stderr == "Wrote usage.png\n"
    data = (tmp_path / "usage.png").read_bytes()
    assert png_size(data) == (1100, 700)
    assert len(data) > 20_000


def test_chart_html_is_one_self_contained_page(run, tmp_path):
    write_month(tmp_path / "usage.jsonl")
    result = run("chart", "--out", "usage.html", "--days", "7")

    assert result.code == 0
    page = (tmp_path / "usage.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert '<img src="data:image/png;base64,' in page
    assert "<table>" in page and "$0.030000" in page
    assert "http" not in page.replace(
        "http-equiv", ""
    )  # nothing fetched from elsewhere


def test_chart_without_matplotlib_says_how_to_get_it(run, tmp_path):
    fake = tmp_path / "no-matplotlib" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('not installed')\n")
    result = run("chart", env={"PYTHONPATH": str(fake.parent)})
    assert result.code == 2
    assert result.stderr_lines == [
        "track_usage: error: chart needs matplotlib: pip install -r"
        " requirements-optional.txt"
    ]
