"""The `router` command line: serve, validate, invoke, tail, events; request, replay, redrive, faults
(router/commands.py).

Exit codes: 0 success; 1 a function error (invoke) or a runtime failure; 2 a bad config or bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from router.core.errors import ConfigError

if TYPE_CHECKING:
    from router.daemon import Daemon

DEFAULT_CONFIG = "config/router.yaml"
EVENT_KINDS = ["s3", "dynamodb", "kafka", "kinesis", "sqs", "sns", "ses", "schedule", "http"]
# Config kinds whose event shape goes by another name: an `email` source delivers SES receipt events.
EVENT_KIND_ALIASES = {"email": "ses"}
CONFIG_HELP = "the config file (default: %(default)s)"

log = logging.getLogger("router.cli")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if getattr(args, "command", None) != "faults":
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.settings = [*args.settings, *extra]  # KEY=VALUE after --function F (argparse cannot mix them)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    return int(args.func(args))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="router", description="Run Lambda-style functions off real event sources."
    )
    sub = p.add_subparsers(dest="command")

    s = sub.add_parser("serve", help="run the daemon in the foreground")
    s.add_argument("-c", "--config", default=DEFAULT_CONFIG, help=CONFIG_HELP)
    s.add_argument("--log-level", default=os.environ.get("ROUTER_LOG_LEVEL", "info"))
    s.add_argument("--log-format", choices=["json", "text", "auto"], default="auto")
    s.add_argument(
        "--watch", action="store_true", help="reload the config file whenever it changes (as SIGHUP does)"
    )
    s.add_argument(
        "--loop",
        choices=["auto", "uvloop", "asyncio"],
        default=os.environ.get("ROUTER_LOOP", "auto"),
        help="event loop: uvloop when installed (auto, the default), or asyncio's own",
    )
    s.add_argument(
        "--quiet-calls",
        action="store_true",
        help="no START/END/REPORT or function output lines on the log (invoker.log_calls: false)",
    )
    s.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="invoker worker processes that run the instances (invoker.workers; 0: the daemon itself)",
    )
    s.add_argument(
        "--processes",
        default=os.environ.get("ROUTER_PROCESSES") or None,
        metavar="N|auto",
        help="processes serving the Invoke API on the port, each with its own instances (server.processes)",
    )
    s.set_defaults(func=cmd_serve)

    v = sub.add_parser("validate", help="check a config exactly as serve would")
    v.add_argument("-c", "--config", default=DEFAULT_CONFIG, help=CONFIG_HELP)
    v.set_defaults(func=cmd_validate)

    i = sub.add_parser("invoke", help="call a function through a running daemon")
    i.add_argument("name")
    i.add_argument("--payload", default="{}", help="JSON, or @file to read it from a file")
    i.add_argument("--async", dest="is_async", action="store_true", help="InvocationType Event (202, queued)")
    i.add_argument("--log", action="store_true", help="print the tail of the call's log to stderr")
    i.add_argument("--endpoint", default=os.environ.get("ROUTER_ENDPOINT", "http://127.0.0.1:9000"))
    i.add_argument("--token", default=os.environ.get("ROUTER_TOKEN", ""))
    i.set_defaults(func=cmd_invoke)

    add_tail_parser(sub)
    from router.commands import add_parsers

    add_parsers(sub)

    e = sub.add_parser("events", help="print a sample event of an AWS shape")
    e.add_argument(
        "--kind",
        required=True,
        choices=[*EVENT_KINDS, *EVENT_KIND_ALIASES],
        help="the shape, or the config kind of a source (email: the SES receipt event it delivers)",
    )
    e.set_defaults(func=cmd_events)
    return p


def add_tail_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    t = sub.add_parser("tail", help="print a function's invocations as they happen (inspection API)")
    t.add_argument("function", nargs="?", help="the function (default: every function)")
    t.add_argument("-n", "--last", type=int, default=0, help="first print the N newest invocations held")
    t.add_argument("--events", action="store_true", help="print each event and result too")
    t.add_argument("--max", dest="max_count", type=int, default=0, help="exit after N invocations")
    t.add_argument("--endpoint", default=os.environ.get("ROUTER_ENDPOINT", "http://127.0.0.1:9000"))
    t.add_argument("--token", default=os.environ.get("ROUTER_TOKEN", ""))
    t.set_defaults(func=cmd_tail)


def cmd_tail(args: argparse.Namespace) -> int:
    from router.tail import run

    return run(
        args.endpoint,
        args.function,
        token=args.token,
        last=args.last,
        events=args.events,
        max_count=args.max_count,
    )


def cmd_validate(args: argparse.Namespace) -> int:
    from router.validate import load_config

    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"{args.config}: {len(e.problems)} problem(s)", file=sys.stderr)
        for problem in e.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except Exception as e:  # a bug in a check; the fuzz tier (tests/fuzz) is there to find them first
        print(f"{args.config}: could not be checked: internal error {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(
        f"{args.config}: ok ({len(config.functions)} functions, {len(config.sources)} sources, "
        f"{len(config.routes)} routes)"
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import msgspec

    from router.logs import setup_logging
    from router.validate import load_config

    setup_logging(args.log_level, None if args.log_format == "auto" else args.log_format == "json")
    try:
        config = load_config(args.config)
    except ConfigError as e:
        for problem in e.problems:
            log.error(f"config: {problem}")
        return 2
    if args.quiet_calls:
        config = msgspec.structs.replace(
            config, invoker=msgspec.structs.replace(config.invoker, log_calls=False)
        )
    if args.workers is not None:
        if not 0 <= args.workers <= 64:
            log.error(f"--workers: expected 0 to 64, got {args.workers}")
            return 2
        config = msgspec.structs.replace(
            config, invoker=msgspec.structs.replace(config.invoker, workers=args.workers)
        )
    if args.processes is not None:
        processes: int | str = (
            int(args.processes) if args.processes.isascii() and args.processes.isdigit() else args.processes
        )
        if processes != "auto" and not (isinstance(processes, int) and 1 <= processes <= 64):
            log.error(f"--processes: expected 1 to 64 or auto, got {args.processes!r}")
            return 2
        config = msgspec.structs.replace(
            config, server=msgspec.structs.replace(config.server, processes=processes)
        )
    if config.server.host not in ("127.0.0.1", "localhost", "::1") and not config.server.auth_token.strip():
        log.error(f"server.host: {config.server.host!r} is not loopback; set server.auth_token to expose it")
        return 2
    from router.daemon import StartError

    try:
        loop_factory = event_loop_factory(args.loop)
    except ImportError as e:
        log.error(f"--loop {args.loop}: {e}")
        return 2
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve(config, Path(args.config).resolve(), watch=args.watch))
    except StartError as e:
        log.error(f"cannot start: {e}")
        return 2
    except OSError as e:
        log.error(f"cannot start: {e}")
        return 1
    return 0


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop `serve` runs on: uvloop (libuv; its transports and callbacks are C) when installed and not
    refused, else asyncio's default (None). "uvloop" insists on it (ImportError when missing)."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise
        return None
    return uvloop.new_event_loop


async def serve(config: object, path: Path, *, watch: bool = False) -> None:
    """Run the daemon until a stop signal. A StartError (a port that cannot be bound) comes out bare: the
    daemon's TaskGroup wraps whatever leaves it in an exception group."""
    from router.daemon import StartError

    try:
        await _serve(config, path, watch)
    except BaseExceptionGroup as group:
        started, _ = group.split(StartError)
        if started is None:
            raise
        first: BaseException = started
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None


async def _serve(config: object, path: Path, watch: bool) -> None:
    from router.daemon import Daemon
    from router.invoker.procs import become_subreaper

    # Descendants of instances that daemonise (double fork) become our children, not init's: the router
    # finds, reaps and, when it stops, kills them (router/invoker/containment.py).
    become_subreaper()
    loop = asyncio.get_running_loop()
    # "router started" is logged before the daemon's handlers below exist: a SIGHUP in between (a script
    # reloading as soon as the router is up) would end the router (SIGHUP's default). It is kept instead,
    # and the reload done once they exist.
    early_hup: list[bool] = []
    loop.add_signal_handler(signal.SIGHUP, early_hup.append, True)
    async with Daemon(config) as daemon:  # type: ignore[arg-type]
        loop.add_signal_handler(signal.SIGTERM, daemon.request_stop)
        loop.add_signal_handler(signal.SIGINT, daemon.request_stop)
        reloads: set[asyncio.Future[object]] = set()

        def on_hup() -> None:
            log.info("SIGHUP: reloading config", extra={"fields": {"path": str(path)}})
            task: asyncio.Future[object] = asyncio.ensure_future(daemon.reload_from(path))
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_hup)
        if early_hup:
            on_hup()
        if watch:
            reloads.add(asyncio.ensure_future(watch_config(daemon, path)))
        try:
            await daemon.wait()
        finally:
            for task in reloads:
                task.cancel()
        # A second signal during shutdown skips the grace period (Daemon.request_stop counts them).


async def watch_config(daemon: Daemon, path: Path) -> None:
    """`serve --watch`: reload the config each time its file changes. The folder is watched, not the file,
    so an editor that saves by writing a new file and renaming it over the old one is seen too. A change
    that leaves the file empty or missing (a save under way) is not reloaded: the next change is."""
    from watchfiles import awatch

    log.info("watching the config file for changes", extra={"fields": {"path": str(path)}})
    async for _ in awatch(
        path.parent, watch_filter=lambda _change, changed: Path(changed) == path, recursive=False
    ):
        empty = await asyncio.to_thread(_empty_or_missing, path)
        if empty:  # an editor that truncates, then writes: never reload an empty file (it would stop all)
            log.info("config file changed but is empty or missing: kept the running config")
            continue
        log.info("config file changed: reloading", extra={"fields": {"path": str(path)}})
        await daemon.reload_from(path)


def _empty_or_missing(path: Path) -> bool:
    try:
        return not path.read_bytes().strip()
    except OSError:  # moved away mid-save: the rename that follows is a change too
        return True


def cmd_invoke(args: argparse.Namespace) -> int:
    payload = args.payload
    if payload.startswith("@"):
        payload = Path(payload[1:]).read_text()
    try:
        json.loads(payload)
    except ValueError as e:
        print(f"--payload: not JSON: {e}", file=sys.stderr)
        return 2
    url = f"{args.endpoint.rstrip('/')}/2015-03-31/functions/{args.name}/invocations"
    headers = {
        "X-Amz-Invocation-Type": "Event" if args.is_async else "RequestResponse",
        "Content-Type": "application/json",
    }
    if args.log:
        headers["X-Amz-Log-Type"] = "Tail"
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    req = urllib.request.Request(url, data=payload.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=930) as resp:
            body, status, rheaders = resp.read(), resp.status, resp.headers
    except urllib.error.HTTPError as e:
        print(
            f"{e.code} {e.headers.get('x-amzn-ErrorType', '')}: {e.read().decode(errors='replace')}",
            file=sys.stderr,
        )
        return 1
    except urllib.error.URLError as e:
        print(f"cannot reach {args.endpoint}: {e.reason}", file=sys.stderr)
        return 1
    if args.log and rheaders.get("X-Amz-Log-Result"):
        sys.stderr.write(base64.b64decode(rheaders["X-Amz-Log-Result"]).decode(errors="replace"))
    if status == 202:
        print(json.dumps({"StatusCode": 202, "RequestId": rheaders.get("x-amzn-RequestId", "")}))
        return 0
    print(body.decode(errors="replace"))
    return 1 if rheaders.get("X-Amz-Function-Error") else 0


def cmd_events(args: argparse.Namespace) -> int:
    from router.shapes import sample

    print(json.dumps(sample(EVENT_KIND_ALIASES.get(args.kind, args.kind)), indent=2))
    return 0
