"""Prices: the table's format, look-ups, and exact cost arithmetic."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest

import track_usage as tu

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT.parent / "shared" / "openrouter-models-2026-08-19.json"


def price(**usd_per_1k: str) -> tu.Price:
    return tu.Price("test/model", **{k: D(v) for k, v in usd_per_1k.items()})


@pytest.mark.parametrize(
    ("prices", "usage", "expected"),
    [
        # gpt-3.5-turbo: 15 * 0.0005/1K + 150 * 0.0015/1K
        ({"prompt": "0.0005", "completion": "0.0015"}, (15, 150), "0.0002325"),
        # claude-sonnet-4.6: binary floats would give 0.037904999999999994
        ({"prompt": "0.003", "completion": "0.015"}, (1235, 2280), "0.037905"),
        # 400 of 1000 prompt tokens cached at the cache rate
        (
            {"prompt": "0.0025", "completion": "0.01", "cached_prompt": "0.00125"},
            (1000, 10, 400),
            "0.0021",
        ),
        # no cache rate: cached tokens cost the prompt rate
        ({"prompt": "0.0005", "completion": "0.0015"}, (1000, 0, 400), "0.0005"),
        # cache writes at their own rate
        (
            {"prompt": "0.003", "completion": "0.015", "cache_write": "0.00375"},
            (1000, 0, 0, 200),
            "0.00315",
        ),
        # reasoning tokens are inside completion tokens: never added again
        ({"prompt": "0.001", "completion": "0.004"}, (10, 100, 0, 0, 80), "0.00041"),
        # a fee per request is added once, not per token
        ({"prompt": "0", "completion": "0", "request": "0.005"}, (10, 10), "0.005"),
        (
            {"prompt": "0.0000833333333333333", "completion": "0"},
            (3, 0),
            "0.0000002499999999999999",
        ),
        ({"prompt": "0", "completion": "0"}, (100000, 100000), "0"),
    ],
)
def test_call_cost_is_exact(prices, usage, expected):
    assert tu.plain(tu.call_cost(price(**prices), tu.Usage(*usage))) == expected


TABLE = {
    name: tu.Price(name, prompt=D(1), completion=D(2))
    for name in (
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
        "openai/gpt-oss-20b:free",
        "deepseek/deepseek-v4-pro",
    )
}


@pytest.mark.parametrize(
    ("requested", "served", "expected"),
    [
        ("openai/gpt-4o", "openai/gpt-4o", "openai/gpt-4o"),
        ("openai/gpt-4o", None, "openai/gpt-4o"),
        ("openai/gpt-4o-mini", "openai/gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini"),
        (
            "deepseek/deepseek-v4-pro",
            "deepseek/deepseek-v4-pro-20260423",
            "deepseek/deepseek-v4-pro",
        ),
        ("openai/gpt-4o:nitro", "openai/gpt-4o:nitro", "openai/gpt-4o"),
        ("openai/gpt-4o:floor", "openai/gpt-4o-2024-08-06", "openai/gpt-4o"),
        # a fallback to another model is priced as that model...
        ("openai/gpt-4o", "openai/gpt-4o-mini", "openai/gpt-4o-mini"),
        # ...or not at all, never at the requested model's price
        ("openai/gpt-4o", "anthropic/claude-haiku-4.5", None),
        ("openrouter/auto", "openai/gpt-4o-2024-11-20", "openai/gpt-4o"),
        ("openrouter/auto", None, None),
        (
            "openai/gpt-oss-20b:free",
            "openai/gpt-oss-20b:free",
            "openai/gpt-oss-20b:free",
        ),
        ("vendor/not-listed", None, None),
        # :extended is not a routing variant: it may cost more, so no match
        ("openai/gpt-4o:extended", None, None),
    ],
)
def test_price_lookup_follows_the_served_model(requested, served, expected):
    found = tu.find_price(TABLE, requested, served)
    assert (found.model if found else None) == expected


def test_free_ids_cost_nothing_even_when_not_in_the_table():
    found = tu.find_price(
        {}, "google/gemma-4-31b-it:free", "google/gemma-4-31b-it-20260403:free"
    )
    assert found.model == "google/gemma-4-31b-it-20260403:free"
    assert tu.call_cost(found, tu.Usage(100, 100)) == 0


def write_table(tmp_path: Path, text: str) -> str:
    path = tmp_path / "pricing.json"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_prices_are_read_as_exact_decimals(tmp_path):
    path = write_table(
        tmp_path,
        '{"unit": "USD per 1K tokens", "models": {"a/b": '
        '{"prompt": 0.0000833333333333333, "completion": 1e-3, "request": 2}}}',
    )
    entry = tu.load_pricing(path)["a/b"]
    assert (entry.prompt, entry.completion, entry.request) == (
        D("0.0000833333333333333"),
        D("0.001"),
        D(2),
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"models": {"a/b": {"prompt": "0.001", "completion": 0.002}}},
            'model "a/b": "prompt" must be a JSON number of USD per 1K tokens, got'
            ' the string "0.001"',
        ),
        (
            {"models": {"a/b": {"prompt": -0.001, "completion": 0.002}}},
            'model "a/b": "prompt" is negative (-0.001)',
        ),
        (
            {"models": {"a/b": {"prompt": 0.001, "completion": 0.002, "input": 1}}},
            'model "a/b": unknown key "input" (known: prompt, completion,'
            " cached_prompt, cache_write, request, tiers)",
        ),
        (
            {"models": {"a/b": {"prompt": 0.001}}},
            'model "a/b": "completion" is missing',
        ),
        (
            {"models": {"a/b": {"prompt": True, "completion": 0.002}}},
            'model "a/b": "prompt" must be a JSON number of USD per 1K tokens,'
            " got true",
        ),
        (
            {"models": {"a/b": [0.001, 0.002]}},
            'model "a/b": expected an object of prices',
        ),
        (
            {"unit": "USD per 1M tokens", "models": {}},
            '"unit" must be "USD per 1K tokens", got the string "USD per 1M tokens";'
            " convert the prices to USD per 1,000 tokens",
        ),
        ({"models": {}, "extra": 1}, 'unknown top-level key "extra"'),
        ({"unit": "USD per 1K tokens"}, 'expected an object with "unit" and "models"'),
    ],
)
def test_malformed_tables_are_refused_naming_model_and_problem(
    tmp_path, table, message
):
    table = {"unit": "USD per 1K tokens", **table}
    path = write_table(tmp_path, json.dumps(table))
    with pytest.raises(tu.ConfigError) as caught:
        tu.load_pricing(path)
    assert str(caught.value) == f"{path}: {message}"


def test_not_a_number_is_refused(tmp_path):
    path = write_table(
        tmp_path, '{"unit": "USD per 1K tokens", "models": {"a/b": {"prompt": NaN}}}'
    )
    with pytest.raises(tu.ConfigError, match="is not valid JSON: NaN is not a price"):
        tu.load_pricing(path)


def test_shipped_table_is_valid_and_covers_the_popular_vendors():
    table = tu.load_pricing(tu.DEFAULT_PRICING_PATH)
    vendors = {model.split("/")[0] for model in table}
    assert {
        "openai",
        "anthropic",
        "google",
        "meta-llama",
        "mistralai",
        "deepseek",
    } <= vendors
    assert len(table) >= 15
    assert any(model.endswith(":free") for model in table)
    shipped = json.loads(Path(tu.DEFAULT_PRICING_PATH).read_text())
    assert shipped["updated"] == "2026-08-19"


@pytest.mark.skipif(not SNAPSHOT.exists(), reason="needs ../shared beside the checkout")
def test_shipped_prices_are_the_snapshot_per_token_prices_times_1000():
    snapshot = {m["id"]: m["pricing"] for m in json.loads(SNAPSHOT.read_text())["data"]}
    names = {
        "prompt": "prompt",
        "completion": "completion",
        "cached_prompt": "input_cache_read",
        "cache_write": "input_cache_write",
    }
    for model, entry in tu.load_pricing(tu.DEFAULT_PRICING_PATH).items():
        for ours, theirs in names.items():
            value = getattr(entry, ours)
            if value is None:
                assert theirs not in snapshot[model], (model, ours)
            else:
                assert value == D(snapshot[model][theirs]) * 1000, (model, ours)
