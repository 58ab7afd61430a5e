"""Local token estimates: encodings, chat framing, special tokens, fallback."""

from __future__ import annotations

import threading

import pytest

import track_usage as tu

QUANTUM = "Explain quantum computing in simple terms."


@pytest.mark.parametrize(
    ("model", "encoding", "exact"),
    [
        ("openai/gpt-4o", "o200k_base", True),
        ("openai/gpt-4o-mini:nitro", "o200k_base", True),
        ("openai/gpt-4.1-mini", "o200k_base", True),
        ("openai/gpt-4.5-preview", "o200k_base", True),
        ("openai/gpt-5-mini", "o200k_base", True),
        ("openai/o1", "o200k_base", True),
        ("openai/o3-mini-high", "o200k_base", True),
        ("openai/o4-mini", "o200k_base", True),
        ("openai/gpt-4", "cl100k_base", True),
        ("openai/gpt-4-turbo", "cl100k_base", True),
        ("openai/gpt-3.5-turbo", "cl100k_base", True),
        ("gpt-4o", "o200k_base", True),
        ("anthropic/claude-haiku-4.5", "cl100k_base", False),
        ("meta-llama/llama-3.1-8b-instruct", "cl100k_base", False),
        ("openai/gpt-oss-20b:free", "cl100k_base", False),
        ("openrouter/auto", "cl100k_base", False),
    ],
)
def test_models_map_to_tiktoken_encodings(model, encoding, exact):
    assert tu.encoding_for_model(model) == (encoding, exact)


@pytest.mark.parametrize(
    ("model", "prompt", "system", "expected"),
    [
        ("openai/gpt-3.5-turbo", QUANTUM, None, 15),
        ("openai/gpt-4o", QUANTUM, None, 14),
        ("openai/gpt-4o-mini:floor", QUANTUM, None, 14),
        ("openai/gpt-4", "Say this is a test!", None, 13),
        ("openai/gpt-4o", QUANTUM, "You are terse.", 22),
        ("openai/gpt-3.5-turbo", QUANTUM, "You are terse.", 23),
        # A special token spelled in user text is plain text: 7 tokens here.
        ("openai/gpt-4o", "<|endoftext|>", None, 14),
        ("openai/gpt-3.5-turbo", "<|endoftext|><|fim_prefix|>", None, 7 + 13),
    ],
)
def test_chat_estimate_counts_the_framing_the_api_bills(
    model, prompt, system, expected
):
    counter = tu.Tokenizers().counter(model)
    count = counter.count_chat(tu.build_messages(prompt, system))
    assert count == expected
    assert type(count) is int
    assert counter.approx is False


def test_other_vendors_are_counted_with_a_marked_approximation():
    counter = tu.Tokenizers().counter("anthropic/claude-haiku-4.5")
    assert (counter.tokenizer, counter.approx) == ("cl100k_base", True)
    assert counter.count_chat(tu.build_messages(QUANTUM, None)) == 15


def test_completion_estimate_has_no_framing():
    counter = tu.Tokenizers().counter("openai/gpt-4o")
    assert counter.count_text("Hello, world") == 3


def test_a_counter_that_may_wait_is_ready_only_once_its_build_is_let_go():
    read_after, build_after = threading.Event(), threading.Event()
    tokenizers = tu.Tokenizers(read_after, build_after)
    counters = []
    waiter = threading.Thread(
        target=lambda: counters.append(tokenizers.counter("openai/gpt-4o", wait=True))
    )
    waiter.start()
    read_after.set()
    waiter.join(1.0)  # the file is read by now, but nothing is built
    assert waiter.is_alive() and not build_after.is_set()
    build_after.set()
    waiter.join(30)
    assert counters[0].count_text("Hello, world") == 3


def test_a_counter_wanted_now_lets_both_steps_go():
    read_after, build_after = threading.Event(), threading.Event()
    counter = tu.Tokenizers(read_after, build_after).counter("openai/gpt-4")
    assert read_after.is_set() and build_after.is_set()
    assert counter.count_text("Hello, world") == 3


def test_an_encoding_unknown_to_the_plugin_is_left_to_tiktoken():
    assert tu.read_encoding("no_such_base") is None
    encoding = tu.build_encoding("cl100k_base", None)
    assert encoding.encode_ordinary(QUANTUM) == tu.build_encoding(
        "cl100k_base", tu.read_encoding("cl100k_base")
    ).encode_ordinary(QUANTUM)


def test_fallback_counts_utf8_bytes_per_four_rounded_up():
    assert [tu.count_utf8_bytes_per_4(t) for t in ("", "a", "abcd", "abcde", "é")] == [
        0,
        1,
        1,
        2,
        1,
    ]
