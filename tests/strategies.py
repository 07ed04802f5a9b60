"""Hypothesis strategies shared by the fuzz tests of every tier."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Text as it can reach us: NUL, bidi marks, BOM, line separators, astral characters.
ODD = st.sampled_from(["\x00", "\u202e", "\u200f", "\ufeff", "\u2028", "😀", "\U0010ffff", "İ"])
TEXT = st.text(st.characters(codec="utf-8"), max_size=20) | ODD
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)


def json_values(max_size: int) -> st.SearchStrategy[Any]:
    """Arbitrary JSON values, containers of at most `max_size` items."""
    return st.recursive(
        SCALARS,
        lambda inner: (
            st.lists(inner, max_size=max_size) | st.dictionaries(TEXT, inner, max_size=max_size)
        ),
        max_leaves=8,
    )
