"""pricing update / show: the price table from OpenRouter's model list."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest

import track_usage as tu
from fake_openrouter import Drop, Respond

SNAPSHOT = Path(tu.SCRIPT_DIR).parent / "shared" / "openrouter-models-2026-08-19.json"
needs_snapshot = pytest.mark.skipif(
    not SNAPSHOT.exists(), reason="needs ../shared beside the checkout"
)


def table_file(tmp_path: Path, **changes: dict) -> Path:
    """A copy of the shipped table, with some entries changed or added."""
    table = json.loads(Path(tu.DEFAULT_PRICING_PATH).read_text())
    table["models"].update(changes)
    path = tmp_path / "pricing.json"
    path.write_text(json.dumps(table))
    return path


@needs_snapshot
def test_update_converts_per_token_prices_to_exact_per_1k_numbers(
    run, server, tmp_path
):
    server.models_path = str(SNAPSHOT)
    path = table_file(
        tmp_path,
        **{
            "my/custom-model": {"prompt": 0.5, "completion": 0.75},
            "openai/gpt-4o": {
                "prompt": 0.005,
                "completion": 0.01,
                "cached_prompt": 0.00125,
            },
        },
    )
    result = run("pricing", "update", "--pricing", str(path))

    assert result.code == 0
    assert result.stdout.splitlines()[:4] == [
        f"Updated {path} from {server.base_url}/models: 409 models (385 added,"
        " 1 changed, 23 unchanged), 1 kept that the list does not have, 5 skipped",
        "  changed openai/gpt-4o: prompt 0.005 -> 0.0025 (USD per 1K)",
        "  kept my/custom-model (not in the list)",
        "  skipped openrouter/auto-beta (no fixed price)",
    ]
    text = path.read_text()
    assert (
        '"google/gemini-2.5-flash": {"prompt": 0.0003, "completion": 0.0025,'
        ' "cached_prompt": 0.00003, "cache_write": 0.0000833333333333333}'
    ) in text
    assert (
        '"anthropic/claude-sonnet-4.5": {"prompt": 0.003, "completion": 0.015,'
        ' "cached_prompt": 0.0003, "cache_write": 0.00375, "tiers":'
        ' [{"min_prompt_tokens": 200000, "prompt": 0.006, "completion": 0.0225,'
        ' "cached_prompt": 0.0006, "cache_write": 0.0075}]}'
    ) in text
    assert '"my/custom-model": {"prompt": 0.5, "completion": 0.75}' in text
    written = json.loads(text, parse_float=D)
    assert written["updated"] == str(tu.utc_now().date())
    assert written["source"].startswith(f"{server.base_url}/models on ")
    assert "openrouter/auto" not in written["models"]


@needs_snapshot
def test_every_updated_price_is_the_listed_price_times_1000(run, server, tmp_path):
    server.models_path = str(SNAPSHOT)
    path = table_file(tmp_path)
    run("pricing", "update", "--pricing", str(path))
    table = tu.load_pricing(str(path))
    names = dict((ours, theirs) for theirs, ours in tu.MODELS_LIST_PRICES)
    for model in json.loads(SNAPSHOT.read_text())["data"]:
        if model["id"] not in table:
            assert model["pricing"]["prompt"] == "-1"
            continue
        for ours, theirs in names.items():
            value = getattr(table[model["id"]], ours)
            listed = model["pricing"].get(theirs)
            expected = None if listed is None else D(listed) * 1000
            if ours in ("prompt", "completion") and listed is None:
                expected = 0
            assert value == expected, (model["id"], ours)


def test_request_fees_missing_prices_and_routers(run, server, tmp_path):
    listing = {
        "data": [
            {
                "id": "a/fee",
                "pricing": {
                    "prompt": "0.000001",
                    "completion": "0.000002",
                    "request": "0.005",
                },
            },
            {"id": "a/only-prompt", "pricing": {"prompt": "0.000001"}},
            {"id": "a/router", "pricing": {"prompt": "-1", "completion": "-1"}},
            {"id": "a/broken", "pricing": {"prompt": "cheap", "completion": "0"}},
        ]
    }
    (tmp_path / "models.json").write_text(json.dumps(listing))
    server.models_path = str(tmp_path / "models.json")
    result = run("pricing", "update", "--pricing", "new.json")

    assert result.code == 0
    table = tu.load_pricing(str(tmp_path / "new.json"))
    assert (table["a/fee"].prompt, table["a/fee"].request) == (D("0.001"), D("0.005"))
    assert (
        table["a/only-prompt"].completion,
        table["a/only-prompt"].cached_prompt,
    ) == (0, None)
    assert set(table) == {"a/fee", "a/only-prompt"}
    assert "  skipped a/broken (unreadable price 'cheap')" in result.stdout


@pytest.mark.parametrize(
    "failure",
    [
        Respond({"error": {"message": "down"}}, 503),
        Respond("<html>not json</html>"),
        Respond({"models": []}),
        Respond({"data": []}),
        Drop(),
    ],
)
def test_a_failed_update_changes_nothing(run, server, tmp_path, failure):
    path = table_file(tmp_path)
    before = path.read_bytes()
    server.enqueue(failure)
    result = run("pricing", "update", "--pricing", str(path))

    assert result.code == 1
    assert result.stderr.strip().endswith(f"{path} is unchanged")
    assert len(result.stderr_lines) == 1
    assert path.read_bytes() == before


def test_show_prints_per_1k_and_per_1m(run):
    result = run("pricing", "show", "openai/gpt-4o", "anthropic/claude-haiku-4.5")
    assert result.code == 0
    header, gpt_4o, haiku = (
        line.split("  ") for line in result.stdout.splitlines()[:3]
    )
    assert [cell.strip() for cell in header if cell.strip()] == [
        "model",
        "prompt/1K",
        "completion/1K",
        "cached/1K",
        "cache write/1K",
        "prompt/1M",
        "completion/1M",
        "per call",
        "long-context tiers",
    ]
    assert [cell.strip() for cell in gpt_4o if cell.strip()] == [
        *("openai/gpt-4o", "0.0025", "0.01", "0.00125", "-", "2.5", "10", "-", "-")
    ]
    assert [cell.strip() for cell in haiku if cell.strip()] == [
        "anthropic/claude-haiku-4.5",
        *("0.001", "0.005", "0.0001", "0.00125", "1", "5", "-", "-"),
    ]


def test_show_of_an_unknown_model_says_so_and_exits_1(run):
    result = run("pricing", "show", "vendor/none")
    assert result.code == 1
    assert "vendor/none  no price" in result.stdout


def test_long_context_tiers_apply_from_their_threshold():
    path_table = {
        "unit": "USD per 1K tokens",
        "models": {
            "a/b": {
                "prompt": D("0.003"),
                "completion": D("0.015"),
                "tiers": [{"min_prompt_tokens": D(200000), "prompt": D("0.006")}],
            }
        },
    }
    price = tu.parse_pricing(path_table, "p.json")["a/b"]
    assert tu.call_cost(price, tu.Usage(199_999, 1000)) == D("0.614997")
    assert tu.call_cost(price, tu.Usage(200_000, 1000)) == D("1.215")  # completion kept


def test_prices_that_look_like_a_unit_mixup_are_reported(run, tmp_path):
    path = table_file(tmp_path, **{"x/y": {"prompt": 2.5, "completion": 0.0000001}})
    result = run("Hi", "--dry-run", "--pricing", str(path))
    assert result.stderr_lines[0] == (
        f"track_usage: warning: {path}: 2 price(s) look like a unit mix-up (USD per 1M"
        " tokens, or per token, instead of per 1K): x/y prompt 2.5; x/y completion"
        " 0.0000001"
    )
