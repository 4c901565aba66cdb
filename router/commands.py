"""The record's commands: `router request`, `router replay`, `router redrive`, `router faults`; and
`router cluster`.

Each is a client of a running daemon's inspection API (docs/record.md), like `router tail`:

* `router request ID`: what a request id (from a REPORT line) was: the accepted event and every invocation,
  with its log (`GET /inspect/requests/{id}`), as JSON.
* `router replay (--source S | --function F) [--since T] [--until T] [--outcome O] [--to G] [--rate N]
  [--async] [--limit N] [--dry-run]` (`POST /inspect/replay`, streamed): one progress line per event, then
  the summary. Exit 1 when some event could not be delivered.
* `router redrive [--function F] [--destination D] [--rate N] [--dry-run]` (`POST /inspect/redrive`): per
  destination, what was sent back and how it went. Exit 1 when some entry failed again.
* `router faults show`, `router faults set (--function F | --source S) KEY=VALUE...`, `router faults clear
  (--function F | --source S)` (`GET`/`PUT /inspect/faults`). KEY is a `faults:` key of the config
  (`error_rate=0.1`, `latency_ms.p=0.2 latency_ms.add=500`, `reorder=true`, `seed=7`).

* `router cluster` (`GET /cluster`, docs/cluster.md): the cluster as the asked node sees it (nodes, shares,
  shard owners, queue partitions and backlog), as JSON.

Exit codes: 0 done, 1 a failure as said above or the daemon unreachable or answering an error, 2 bad
arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
from typing import Any, TextIO

from router.tail import InspectClient, TailError

LONG_S = 24 * 3600.0  # a replay or a redrive may run long; the daemon ends it


def _client_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", default=os.environ.get("ROUTER_ENDPOINT", "http://127.0.0.1:9000"))
    p.add_argument("--token", default=os.environ.get("ROUTER_TOKEN", ""))


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser("request", help="what a request id was: its event and invocations (the record)")
    r.add_argument("request_id")
    _client_args(r)
    r.set_defaults(func=cmd_request)

    c = sub.add_parser("cluster", help="the cluster's nodes, shares, shard owners and queue (GET /cluster)")
    _client_args(c)
    c.set_defaults(func=cmd_cluster)

    p = sub.add_parser("replay", help="deliver recorded events again")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--source", help="the events of this source")
    which.add_argument("--function", help="the events this function received")
    p.add_argument("--since", help="epoch seconds, RFC 3339, or a span back from now (1h)")
    p.add_argument("--until", help="as --since")
    p.add_argument("--outcome", help="only requests whose latest attempt ended so (success, error)")
    p.add_argument("--to", help="deliver to this function instead")
    p.add_argument("--rate", type=float, default=10.0, help="events per second (default 10)")
    p.add_argument("--limit", type=int, default=10_000)
    p.add_argument("--async", dest="is_async", action="store_true", help="queue them (retries apply)")
    p.add_argument("--dry-run", action="store_true", help="list what would be replayed")
    _client_args(p)
    p.set_defaults(func=cmd_replay)

    d = sub.add_parser("redrive", help="send failure destinations' entries back through their functions")
    d.add_argument("--function", help="only the destinations and entries of this function")
    d.add_argument("--destination", help="only this destination (its config path, folder or topic)")
    d.add_argument("--rate", type=float, default=50.0, help="entries per second (default 50)")
    d.add_argument("--dry-run", action="store_true", help="list what would be sent")
    _client_args(d)
    d.set_defaults(func=cmd_redrive)

    f = sub.add_parser("faults", help="show or change the injected faults of a running daemon")
    f.add_argument("action", choices=["show", "set", "clear"])
    f.add_argument("settings", nargs="*", metavar="KEY=VALUE", help="faults keys, for set")
    target = f.add_mutually_exclusive_group()
    target.add_argument("--function")
    target.add_argument("--source")
    _client_args(f)
    f.set_defaults(func=cmd_faults)


def _fail(command: str, error: Exception | str) -> int:
    print(f"router {command}: {error}", file=sys.stderr)
    return 1


def cmd_request(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    client = InspectClient(args.endpoint, args.token)
    try:
        found = client.get(f"/inspect/requests/{urllib.parse.quote(args.request_id, safe='')}")
    except TailError as e:
        return _fail("request", e)
    print(json.dumps(found, indent=2), file=out)
    return 0


def cmd_cluster(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    client = InspectClient(args.endpoint, args.token)
    try:
        found = client.get("/cluster")
    except TailError as e:
        return _fail("cluster", e)
    print(json.dumps(found, indent=2), file=out)
    return 0


def cmd_replay(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    plan: dict[str, Any] = {"rate": args.rate, "limit": args.limit, "dry_run": args.dry_run}
    plan.update({k: v for k in ("source", "function", "since", "until", "outcome", "to")
                 if (v := getattr(args, k)) is not None})  # fmt: skip
    if args.is_async:
        plan["mode"] = "async"
    client = InspectClient(args.endpoint, args.token)
    summary: dict[str, Any] = {}
    try:
        with client.open("POST", "/inspect/replay", plan, timeout=LONG_S, accept="application/x-ndjson") as r:
            for raw in r:
                line = json.loads(raw)
                if "summary" in line:
                    summary = line["summary"]
                else:
                    print(_progress(line), file=out, flush=True)
    except TailError as e:
        return _fail("replay", e)
    print(json.dumps(summary), file=out)
    return 1 if summary.get("errors") else 0


def _progress(line: dict[str, Any]) -> str:
    p, item = line["progress"], line["item"]
    where = f"[{p['done']}/{p['total']}] {item['original']} ({item.get('source') or '-'})"
    if "request_id" not in item:
        why = item.get("skipped") or item.get("message") or "dry run"
        return f"{where} -> {item['function']}: {item.get('error') or why}"
    same = {True: "same result", False: "different result", None: ""}[item.get("same_result")]
    return f"{where} -> {item['function']} {item['request_id']} {item.get('outcome')} {same}".rstrip()


def cmd_redrive(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    body = {"dry_run": args.dry_run, "rate": args.rate}
    body.update({k: v for k in ("function", "destination") if (v := getattr(args, k)) is not None})
    client = InspectClient(args.endpoint, args.token)
    try:
        summary = client.call("POST", "/inspect/redrive", body, timeout=LONG_S)
    except TailError as e:
        return _fail("redrive", e)
    for d in summary["destinations"]:
        print(
            f"{d['owner']} ({d['kind']} {d['target']}): {d['entries']} entries, {d['succeeded']} succeeded, "
            f"{d['failed']} failed, {d['skipped']} skipped"
            + (f", {d['would_send']} to send" if args.dry_run else ""),
            file=out,
        )
        for item in d["items"]:
            if item["result"] in ("failed", "skipped"):
                detail = item.get("reason") or item.get("error_type") or item.get("error")
                print(f"  {item['id']}: {item['result']} ({detail})", file=out)
    return 1 if summary["failed"] else 0


def cmd_faults(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    client = InspectClient(args.endpoint, args.token)
    try:
        if args.action == "show":
            print(json.dumps(client.get("/inspect/faults"), indent=2), file=out)
            return 0
        if args.function is None and args.source is None:
            print("router faults: give --function or --source", file=sys.stderr)
            return 2
        try:
            settings = parse_settings(args.settings) if args.action == "set" else None
        except ValueError as e:
            print(f"router faults: {e}", file=sys.stderr)
            return 2
        key, name = ("functions", args.function) if args.function else ("sources", args.source)
        shown = client.call("PUT", "/inspect/faults", {key: {name: settings}})
    except TailError as e:
        return _fail("faults", e)
    print(json.dumps(shown, indent=2), file=out)
    return 0


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """`error_rate=0.1 latency_ms.p=0.2 reorder=true` -> the faults settings (values read as JSON)."""
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, eq, raw = pair.partition("=")
        if not eq or not key:
            raise ValueError(f"expected KEY=VALUE, got {pair!r}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        *parents, last = key.split(".")
        node = settings
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return settings
