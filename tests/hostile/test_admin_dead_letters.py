"""Dead letters carrying hostile data (in the event log, where they are listed from): the
command line shows their control characters as escapes; the admin API finds one by its id
however hostile, and refuses bad paging with a problem."""

from __future__ import annotations

import io
import json
import socket
import unicodedata
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.admin import dead_letters
from service.admin.dead_letters import run_command
from service.bus.broker import Broker
from service.settings import Settings
from service.store import Database
from service.store.eventlog import Attempt, EventQuery, LoggedEvent
from service.web import create_app
from tests.conftest import delete_topology

pytestmark = pytest.mark.integration

ESC = "\x1b[2J\x1b]0;pwned\x07"  # clear the screen, retitle the terminal
HOSTILE_TYPE = f"evil.{ESC}type"
HOSTILE_ERROR = "RejectEvent: no\n2024-01-01 forged line\r\x9b31m\x7f\u202eevil"


def hidden(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in {"Cc", "Cf", "Cs", "Zl", "Zp"}]


@pytest.fixture
async def letters(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[tuple[Settings, Broker]]:
    """Three dead letters in the log (and in the queue, for replay), one of them made of
    control characters."""
    settings = make_settings(store={"url": f"sqlite+aiosqlite:///{tmp_path / 's.sqlite3'}"})
    broker = Broker(settings.amqp)
    database = Database(settings.store.url)
    await broker.start()
    await database.open()
    try:
        await broker.wait_ready(15)
        for n, (event_id, kind, error) in enumerate((
            ("d-1", "a.b.c", "RejectEvent: one"),
            ("d-2", "a.b.c", "RejectEvent: two"),
            (f"d-3{ESC}", HOSTILE_TYPE, HOSTILE_ERROR),
        )):  # fmt: skip
            body = orjson.dumps({"specversion": "1.0", "id": event_id, "source": "t",
                                 "type": kind, "data": {"note": HOSTILE_ERROR}})  # fmt: skip
            await broker.publish(
                body, routing_key="a.b.c", message_id=event_id, timeout_s=5,
                exchange=settings.amqp.dead_letter_exchange, headers={"x-bridge-error": error},
            )  # fmt: skip
            at = 1000.0 + n
            head = LoggedEvent(event_id, kind, "t", None, None, at, at, "dead_lettered", 1, error)
            tries = [Attempt("h", 1, "dead_letter", error, at, 1.0)]
            await database.events.record(head, tries, orjson.dumps({"note": HOSTILE_ERROR}))
        yield settings, broker
    finally:
        await database.close()
        await broker.close()
        await delete_topology(settings)


async def command(settings: Settings, action: str) -> str:
    out = io.StringIO()
    assert await run_command(settings, action, EventQuery(), out) == 0
    return out.getvalue()


async def test_list_shows_control_characters_as_escapes(
    letters: tuple[Settings, Broker],
) -> None:
    listed = await command(letters[0], "list")
    assert not [c for c in hidden(listed) if c != "\n"]
    assert len(listed.splitlines()) == 4  # three letters and the count: no forged line
    assert "d-3\\x1b[2J\\x1b]0;pwned\\x07" in listed
    assert "\\x0a2024-01-01 forged line\\x0d\\x9b31m\\x7f\\u202eevil" in listed


async def test_show_prints_json_with_the_same_values_and_nothing_raw(
    letters: tuple[Settings, Broker],
) -> None:
    shown = await command(letters[0], "show")
    assert not [c for c in hidden(shown) if c != "\n"]
    hostile = next(doc for doc in documents(shown) if doc["id"].startswith("d-3"))
    assert hostile["type"] == HOSTILE_TYPE
    assert hostile["last_error"] == HOSTILE_ERROR
    assert hostile["data"]["note"] == HOSTILE_ERROR


def documents(shown: str) -> list[Any]:
    """The JSON documents `show` printed one after the other (then a count line)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := shown.find("{", at)) != -1:
        document, at = decoder.raw_decode(shown, at)
        found.append(document)
    return found


async def test_replay_prints_the_ids_escaped(letters: tuple[Settings, Broker]) -> None:
    replayed = await command(letters[0], "replay")
    assert not [c for c in hidden(replayed) if c != "\n"]
    assert "  d-3\\x1b[2J\\x1b]0;pwned\\x07\n" in replayed


async def test_the_admin_api_finds_a_hostile_id_and_refuses_bad_paging(
    letters: tuple[Settings, Broker],
) -> None:
    settings, broker = letters
    database = Database(settings.store.url)
    await database.open()
    try:
        _, key = await database.keys.create("ops", ["events:read"], [])
        headers = {"Authorization": f"Bearer {key}"}
        async with TestClient(TestServer(create_app(settings, broker, database))) as client:
            found = await ids(client, "?id=d-3%1B%5B2J%1B%5D0%3Bpwned%07", headers)
            assert found == [f"d-3{ESC}"]
            assert await ids(client, "?type=evil.*", headers) == [f"d-3{ESC}"]
            assert len(await ids(client, "", headers)) == 3
            for query in ("?limit=0", "?limit=x", "?cursor=%00", "?since=soon", "?type=a.*.b"):
                async with client.get(f"/api/v1/dead-letters{query}", headers=headers) as r:
                    assert r.status == 400, query
                    assert r.content_type == "application/problem+json"
                    assert (await r.json())["status"] == 400
    finally:
        await database.close()


async def ids(client: TestClient[Any, Any], query: str, headers: dict[str, str]) -> list[str]:
    async with client.get(f"/api/v1/dead-letters{query}", headers=headers) as response:
        assert response.status == 200
        return sorted(letter["id"] for letter in (await response.json())["items"])


async def test_the_command_line_says_when_the_broker_does_not_answer(
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """Listing needs no broker; a replay says when it does not answer, its password hidden."""
    monkeypatch.setattr(dead_letters, "BROKER_WAIT_S", 0.5)
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        url = f"amqp://guest:PWsecret@127.0.0.1:{closed.getsockname()[1]}/"
        settings = make_settings(amqp_url=url, store={"url": f"sqlite+aiosqlite:///{tmp_path}/s"})
        assert await run_command(settings, "list", EventQuery(), io.StringIO()) == 0
        assert await run_command(settings, "replay", EventQuery(), io.StringIO()) == 1
    err = capsys.readouterr().err
    assert "did not answer in 0.5 s" in err and "guest:***@" in err and "PW" not in err
