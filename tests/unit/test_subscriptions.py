"""The plan/apply engine: what differs, what is done, and secrets never shown."""

from __future__ import annotations

from collections.abc import Sequence

from service.clients.leanix_subscriptions import event_type, tag_sets
from service.subscriptions import Action, Found, Wanted, apply, compare, render

SECRET = "Basic c2VjcmV0LXZhbHVl"
WANTED = Wanted("x", {"url": "https://a/b", "events": ["b", "a"]}, {"auth": SECRET})


def test_lists_compare_in_any_order_and_equal_secrets_are_no_change() -> None:
    found = Found("1", {"url": "https://a/b", "events": ["a", "b"]}, {"auth": SECRET})
    change = compare(WANTED, found)
    assert change.action is Action.NONE and change.lines == ()


def test_a_different_secret_is_an_update_that_never_shows_it() -> None:
    found = Found("1", {"url": "https://a/b", "events": ["a", "b"]}, {"auth": "Basic old"})
    change = compare(WANTED, found)
    assert change.action is Action.UPDATE
    assert change.lines == ("~ auth: (secret) differs",)
    text = render([change], applied=False)
    assert SECRET not in text and "Basic old" not in text and SECRET not in repr(WANTED)


def test_an_unreadable_secret_is_left_alone_unless_asked() -> None:
    found = Found("1", {"url": "https://a/b", "events": ["a", "b"]}, {"auth": None})
    kept = compare(WANTED, found)
    assert kept.action is Action.NONE and kept.lines == ("! auth: set, cannot be compared",)
    assert compare(WANTED, found, rewrite_secrets=True).action is Action.UPDATE


def test_a_generated_secret_is_reported_not_applied() -> None:
    wanted = Wanted("x", {"url": "u"}, {"secret": "ours"}, False, "copy it into $X")
    change = compare(wanted, Found("1", {"url": "u"}, {"secret": "theirs"}))
    assert change.action is Action.NONE
    assert change.lines == ("! secret: differs: copy it into $X",)


async def test_skipped_is_neither_read_nor_written() -> None:
    class Api:
        def __init__(self) -> None:
            self.calls: list[str] = []

        async def wanted(self) -> Sequence[Wanted]:
            return [Wanted("y", {}, skipped="set the URL")]

        async def find(self, wanted: Wanted) -> Found | None:
            self.calls.append("find")
            return None

        async def create(self, wanted: Wanted) -> None:
            self.calls.append("create")

        async def update(self, found: Found, wanted: Wanted) -> None:
            self.calls.append("update")

    api = Api()
    changes = await apply([api])
    assert (
        api.calls == []
        and render(changes, applied=True) == "y: skipped\n    set the URL\nno changes\n"
    )


def test_tag_sets_follow_the_rules_patterns() -> None:
    assert event_type("FACT_SHEET_UPDATED") == "leanix.factsheet.updated"
    assert event_type("RELATION_SWITCH") == "leanix.relation.switch"
    assert tag_sets(["leanix.factsheet.updated"]) == [["pathfinder", "FACT_SHEET_UPDATED"]]
    assert ["pathfinder", "RELATION_CREATED"] in tag_sets(["leanix.#"])
    assert tag_sets(["leanix.factsheet.reconciled", "uipath.#"]) == []


def test_several_workspaces_are_printed_each_under_its_name_with_its_notes() -> None:
    def pulled(found: Found | None) -> list[str]:
        return [f"pulled: subscription id {found.id}" if found else "pulled: id on create"]

    prod = Wanted("leanix subscription", {"a": 1}, group="prod", notes=pulled)
    sandbox = Wanted("leanix subscription", {"a": 1}, group="sandbox", notes=pulled)
    platform = Wanted("uipath webhook", {"a": 1})
    changes = [
        compare(prod, Found("s-1", {"a": 1})),
        compare(sandbox, None),
        compare(platform, Found("w-1", {"a": 1})),
    ]
    assert render(changes, applied=False).splitlines()[:-1] == [
        "[workspace prod]",
        "leanix subscription: no changes",
        "    = pulled: subscription id s-1",
        "[workspace sandbox]",
        "leanix subscription: create",
        "    + a: 1",
        "    = pulled: id on create",
        "[platforms]",
        "uipath webhook: no changes",
    ]
    assert changes[0].action is Action.NONE  # a note is no difference
