"""Command line.

python -m service [all]     receiver and worker in one process (the default)
python -m service receiver  the HTTP receiver only
python -m service worker    the worker only
python -m service pull      fetch each workspace's LeanIX PULL subscription's events onto the bus
python -m service tail [PATTERN]
                            print the CloudEvents passing on the bus
python -m service dead-letters list|show|replay [--id ID] [--type PATTERN] [--since 2h] ...
                            page through (from the event log) and replay what the worker
                            gave up on
python -m service simulators
                            serve the vendor simulators on ports 9101-9105
python -m service demo      the whole loop, once per platform, against the simulators
python -m service subscriptions plan|apply [--rewrite-secrets]
                            make the webhook subscriptions of LeanIX and the platforms
                            match the configuration (plan changes nothing)
python -m service reconcile [--since 24h] [--apply] [--workspace NAME]
                            publish leanix.factsheet.reconciled for Fact Sheets the rules
                            would act on whose change has no recorded run (dry run unless
                            --apply), in each workspace or the one named
python -m service settings defaults
                            print config/default.toml: every setting, its default and variable
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

from service import logs, settings
from service.errors import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command")
    for mode in settings.MODES:
        commands.add_parser(mode, help=f"serve: {mode}")
    tail = commands.add_parser("tail", help="print the CloudEvents passing on the bus")
    tail.add_argument("pattern", nargs="?", default="#", help="a topic pattern, e.g. 'leanix.#'")
    letters = commands.add_parser("dead-letters", help="list, show or replay dead letters")
    letters.add_argument("action", choices=["list", "show", "replay"])
    letters.add_argument("--id", help="an event id")
    letters.add_argument("--type", help="an event type, or a prefix: 'uipath.job.*'")
    letters.add_argument("--fact-sheet", help="a Fact Sheet id, or the start of its name")
    letters.add_argument("--run-id", help="a vendor's run id: the event that started it")
    letters.add_argument("--since", help="received since: 30m, 2h, 1d or an ISO time")
    letters.add_argument("--until", help="received before: 30m, 2h, 1d or an ISO time")
    letters.add_argument("--limit", type=int, default=50, help="list, show: the page size")
    letters.add_argument("--cursor", help="list, show: the next page, as the last one said")
    simulators = commands.add_parser("simulators", help="serve the simulators on ports 9101-9105")
    simulators.add_argument(
        "--service-url", help="where the UiPath simulator's webhook calls the service"
    )
    commands.add_parser("demo", help="the loop once per platform, against the simulators")
    subscriptions = commands.add_parser("subscriptions", help="plan or apply webhook subscriptions")
    subscriptions.add_argument("action", choices=["plan", "apply"])
    subscriptions.add_argument(
        "--rewrite-secrets",
        action="store_true",
        help="also send the secrets a platform does not give back to compare",
    )
    reconcile = commands.add_parser("reconcile", help="publish what lost webhooks missed")
    reconcile.add_argument("--since", default="24h", help="changed since: 30m, 2h, 1d or ISO time")
    reconcile.add_argument("--apply", action="store_true", help="publish (default: dry run)")
    reconcile.add_argument("--workspace", help="only this workspace (its name or id)")
    defaults = commands.add_parser("settings", help="print every setting with its default")
    defaults.add_argument("action", choices=["defaults"])
    keys = commands.add_parser("keys", help="create, list or revoke admin API keys")
    keys.add_argument("action", choices=["create", "list", "revoke"])
    keys.add_argument("key_id", nargs="?", help="revoke: the key's id")
    keys.add_argument("--name", help="create: who or what uses the key")
    keys.add_argument("--scopes", default="", help="create: comma-separated scopes")
    keys.add_argument("--allow", default="", help="create: comma-separated CIDRs it may come from")
    return parser


def _serve(loaded: settings.Settings, args: argparse.Namespace) -> int:
    mode = args.command or "all"
    if mode in ("all", "receiver") and loaded.http.process_count > 1:
        from service.processes import prepare_metrics

        prepare_metrics()  # before service.runtime imports prometheus_client
    from service import runtime

    return runtime.main(loaded, mode)


def _tail(loaded: settings.Settings, args: argparse.Namespace) -> int:
    from service.tail import tail

    asyncio.run(tail(loaded.amqp, args.pattern))
    return 0


def _dead_letters(loaded: settings.Settings, args: argparse.Namespace) -> int:
    from service.admin.dead_letters import run_command
    from service.deadletters import parse_since
    from service.store.eventlog import EventQuery

    try:
        since, until = (parse_since(t).timestamp() if t else None for t in (args.since, args.until))
    except ValueError as exc:
        print(f"--since/--until: {exc}", file=sys.stderr)
        return 2
    query = EventQuery(
        id=args.id, type=args.type, fact_sheet=args.fact_sheet, run_id=args.run_id,
        since=since, until=until, limit=max(1, args.limit), cursor=args.cursor,
    )  # fmt: skip
    return asyncio.run(run_command(loaded, args.action, query))


def _simulators(loaded: settings.Settings, args: argparse.Namespace) -> int:
    from service.simulators.serve import FIRST_PORT, serve_all

    url = args.service_url or f"http://127.0.0.1:{loaded.http.port}"
    asyncio.run(serve_all("0.0.0.0", FIRST_PORT, url))
    return 0


def _demo(loaded: settings.Settings, args: argparse.Namespace) -> int:
    from service.simulators.demo import main as demo

    logs.configure(settings.LogSettings(level="warning", format="console"))
    return demo(loaded.amqp.url)


def _keys(loaded: settings.Settings, args: argparse.Namespace) -> int:
    from service.admin.keys import run_keys

    return asyncio.run(
        run_keys(loaded, args.action, args.key_id, args.name, args.scopes, args.allow)
    )


def _subscriptions(loaded: settings.Settings, args: argparse.Namespace) -> int:
    from service.subscriptions_cli import run_command

    logs.configure(settings.LogSettings(level="warning", format=loaded.log.format))
    return asyncio.run(run_command(loaded, args.action, args.rewrite_secrets))


def _reconcile(loaded: settings.Settings, args: argparse.Namespace) -> int:
    from service.deadletters import parse_since
    from service.reconcile import run_command

    try:
        since = parse_since(args.since)
    except ValueError as exc:
        print(f"--since: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(run_command(loaded, since, args.apply, args.workspace))


COMMANDS: dict[str, Callable[[settings.Settings, argparse.Namespace], int]] = {
    "keys": _keys,
    "subscriptions": _subscriptions,
    "reconcile": _reconcile,
    "tail": _tail,
    "dead-letters": _dead_letters,
    "simulators": _simulators,
    "demo": _demo,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "settings":  # needs no settings loaded: a broken one is no obstacle
        sys.stdout.write(settings.defaults_toml())
        return 0
    try:
        loaded = settings.load()
        logs.configure(loaded.log)
        return COMMANDS.get(args.command or "all", _serve)(loaded, args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        print(f"stopped by an error: {exc!r}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
