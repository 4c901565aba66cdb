"""What the durable record spends per recorded call on its storage side, segments against a row per call.

    python bench/record_write_bench.py [--rows 90000] [--batch 600] [--rounds 3]

Takes the same invocation rows (the size of an Invoke of the peer benchmark's echo: a 98-byte event and
result, a 305-byte log tail with START/END/REPORT, a trace header) in batches as the record's thread gets
them, into fresh files, in variants taken in turn:

* `segments`: the record as it is (router/record/schema.py): the record's thread packs each batch into
  segments (`build`, in the daemon), the writer process appends their blobs to a blob file and inserts
  their rows (`write`);
* `row per call`: the earlier layout's floor, the baseline: one table row per invocation, without the
  indexes and the request ids' index it needed (those cost it another 5 us per row).

Printed: user and system CPU per row, medians over the rounds, and each variant against `row per call`.
Rows are built before the clock starts.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import uuid
from pathlib import Path

from router.record import schema

EVENT = b'{"bench":"invoke","seq":"%010d","n":42,"ok":true,"tags":["a","b"],"nested":{"k":"v","x":1.5}}'
LOG = (
    b"START RequestId: 05981d09-af6c-4b1a-84a5-dba76495604d Version: $LATEST\n"
    b"END RequestId: 05981d09-af6c-4b1a-84a5-dba76495604d\n"
    b"REPORT RequestId: 05981d09-af6c-4b1a-84a5-dba76495604d\tDuration: 1.11 ms\tBilled Duration: 2 ms\t"
    b"Memory Size: 1769 MB\tMax Memory Used: 12 MB\tInit Duration: 31.60 ms\tCPU Time: 0.32 ms\n"
)
TRACE = "Root=1-6b165eaa-666eca8038aaef8961abaefe;Parent=b4d2b9bea17d9a09;Sampled=0;Lineage=f80bc0b3:0"
ROW_PER_CALL = f"""CREATE TABLE invocations ({", ".join(schema.FIELDS)}, PRIMARY KEY (seq))"""


def batches(rows: int, size: int, log: bytes) -> list[list[tuple[object, ...]]]:
    out, seq, now = [], 0, 1.78e9
    for _ in range(rows // size):
        batch = []
        for _ in range(size):
            seq += 1
            event = EVENT % seq
            batch.append((
                seq, "echo", str(uuid.uuid4()), "invoke", "RequestResponse", 0, now + seq / 3000, 1.1, 2,
                None, 1769, 12, "success", None, 0, TRACE, None, event, len(event), event, len(event), log,
            ))  # fmt: skip
        out.append(batch)
    return out


def cpu() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def measure(variant: str, rows: int, size: int, folder: Path) -> tuple[float, float]:
    """(user, system) microseconds of CPU per row."""
    path = str(folder / f"{variant.replace(' ', '-')}.db")
    blobs = schema.Blobs(path)
    blobs.open_for_append()
    db, _ = schema.open_db(path, blobs)
    work = batches(rows, size, LOG)
    if variant == "row per call":
        db.execute(ROW_PER_CALL)
        insert = f"INSERT INTO invocations VALUES ({', '.join('?' * len(schema.FIELDS))})"
        u0, s0 = cpu()
        for batch in work:
            db.execute("BEGIN")
            db.executemany(insert, batch)
            db.execute("COMMIT")
    elif variant == "segments: build":
        u0, s0 = cpu()
        for batch in work:
            schema.segments(batch, ())
    else:
        built = [schema.segments(batch, ()) for batch in work]
        u0, s0 = cpu()
        for segments in built:
            schema.write_segments(db, blobs, segments, [])
    u1, s1 = cpu()
    db.close()
    blobs.close()
    return (u1 - u0) / rows * 1e6, (s1 - s0) / rows * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=90_000)
    ap.add_argument("--batch", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    variants = ("segments: build", "segments: write", "row per call")
    got: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    for r in range(args.rounds):
        for v in variants[r % 3 :] + variants[: r % 3]:
            with tempfile.TemporaryDirectory(prefix="record-write-bench-") as folder:
                got[v].append(measure(v, args.rows, args.batch, Path(folder)))
    total = {v: statistics.median(u + s for u, s in got[v]) for v in variants}
    base = total["row per call"]
    for v in variants:
        user = statistics.median(u for u, _ in got[v])
        system = statistics.median(s for _, s in got[v])
        ratio = total[v] / base
        print(f"{v:16} user {user:5.1f} us  system {system:4.1f} us  per row   (/row per call {ratio:.2f})")
    both = total["segments: build"] + total["segments: write"]
    print(f"segments, build and write: {both:.1f} us per row   (/row per call {both / base:.2f})")


if __name__ == "__main__":
    main()
