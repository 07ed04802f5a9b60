"""Log lines in tests: what the `log_lines` fixture (tests/conftest.py) caught, parsed."""

from __future__ import annotations

import io
from typing import Any

import orjson


def parse(stream: io.StringIO) -> list[dict[str, Any]]:
    """The JSON log lines written to `stream` so far."""
    return [orjson.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
