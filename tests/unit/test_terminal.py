"""Text for a terminal: control characters from event data are shown, never obeyed."""

from __future__ import annotations

import unicodedata

import orjson
from hypothesis import given
from hypothesis import strategies as st

from service.tail import line
from service.terminal import visible, visible_json

HOSTILE = "red\x1b[31m\x1b]0;title\x07\nforged\r\x9b2J\x7f\u202eevil\u2028\x00\U000e0041"


def hidden(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in {"Cc", "Cf", "Cs", "Zl", "Zp"}]


def test_control_characters_become_visible_escapes() -> None:
    shown = visible(HOSTILE)
    assert not hidden(shown)
    assert shown == (
        "red\\x1b[31m\\x1b]0;title\\x07\\x0aforged\\x0d\\x9b2J\\x7f\\u202eevil\\u2028"
        "\\x00\\U000e0041"
    )


def test_a_backslash_in_the_data_cannot_pass_for_an_escape() -> None:
    assert visible("\\x1b") == "\\\\x1b"
    assert visible("plain text, ünïcode") == "plain text, ünïcode"


@given(st.text())
def test_nothing_hidden_survives_and_json_keeps_its_value(text: str) -> None:
    assert not hidden(visible(text))
    document = orjson.dumps({"data": text}, option=orjson.OPT_INDENT_2).decode()
    shown = visible_json(document)
    assert not [c for c in hidden(shown) if c != "\n"]  # the indentation's newlines
    assert orjson.loads(shown) == {"data": text}


def test_tail_prints_one_safe_line_per_message() -> None:
    event = orjson.dumps({"type": "x", "data": {"note": HOSTILE}}, option=orjson.OPT_INDENT_2)
    shown = line(event)
    assert not hidden(shown)  # one line: the body's indentation is gone too
    assert orjson.loads(shown)["data"]["note"] == HOSTILE
    raw = line(b"not json \x1b[2J\n")
    assert raw == "not json \\x1b[2J\\x0a"
