"""Age-off throughput: ``age_off`` vs ``delete_many`` of the same rows, in the same run.

For each way of finding expired rows, two identical tables are filled with N rows (two
indexes each), of which a fraction has expired under a :class:`~culvert_py.clock.ManualClock`:

- **index**: ``age_off = { column = "event_time", after = "1d" }`` with a range index on
  ``event_time``: age-off range-scans the expired part of the index;
- **scan**: ``ttl = "1d"``, half the rows written a day earlier: age-off scans the version
  cells of the whole table.

Subject: ``table.age_off()`` on one table (find + conditional deletes through the write
protocol). Baseline: ``table.delete_many(keys)`` of the same keys on the twin table, keys
known in advance (the protocol's delete, nothing to find). Both report rows/s; the ratio
is age-off's throughput over the baseline's.

    python bench/ageoff.py [--rows 10000] [--expired 0.5] [--store hbase://127.0.0.1:9090]
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta

from culvert_py.client import Client
from culvert_py.clock import ManualClock
from culvert_py.schema import parse_schema
from culvert_py.store import open_store

DAY = 86_400_000


def spec(lifespan: dict) -> dict:
    return {
        "row_key": ["id"],
        "salt_buckets": 8,
        "columns": {"id": "str", "kind": "str", "event_time": "datetime", "payload": "str"},
        "indexes": {
            "by_kind": {"kind": "term", "columns": ["kind"]},
            "by_time": {"kind": "range", "columns": ["event_time"], "include": ["kind"]},
        },
        **lifespan,
    }


def fill(db: Client, clock: ManualClock, names: list[str], path: str, n: int, old: int) -> list:
    """Write ``n`` rows to each table; the first ``old`` are expired once this returns."""
    now = datetime.fromtimestamp(clock() / 1000, UTC)

    def row(i: int) -> dict:
        days = 2 if i < old and path == "index" else 0
        when = now - timedelta(days=days, seconds=i % 3600)
        return {"id": f"e{i:08d}", "kind": f"k{i % 50}", "event_time": when, "payload": "x" * 40}

    for name in names:
        db.table(name).put_many((row(i) for i in range(old)), bulk=True)
    if path == "scan":
        clock.advance(DAY + 60_000)  # the first rows are now past the ttl (by a minute)
    for name in names:
        db.table(name).put_many((row(i) for i in range(old, n)), bulk=True)
    clock.advance(1)
    return [f"e{i:08d}" for i in range(old)]


def run(url: str, n: int, fraction: float, paths: list[str]) -> dict:
    results: dict = {}
    clock = ManualClock()
    db = Client(open_store(url), workers=16, clock=clock)
    try:
        for path in paths:
            lifespan = (
                {"age_off": {"column": "event_time", "after": "1d"}}
                if path == "index"
                else {"ttl": "1d"}
            )
            names = [f"bench_ao_{uuid.uuid4().hex[:8]}" for _ in range(2)]
            db.apply_schema(parse_schema({"tables": {m: spec(lifespan) for m in names}}))
            try:
                expired = int(n * fraction)
                keys = fill(db, clock, names, path, n, expired)
                t0 = time.perf_counter()
                report = db.table(names[0]).age_off()
                ageoff_s = time.perf_counter() - t0
                assert report.deleted == expired, report
                t0 = time.perf_counter()
                db.table(names[1]).delete_many(keys)
                delete_s = time.perf_counter() - t0
                left = sum(1 for _ in db.table(names[0]).scan_rows())
                assert left == n - expired, left
                results[path] = (expired, ageoff_s, delete_s, report)
            finally:
                for m in names:
                    db.drop_table(m)
    finally:
        db.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--expired", type=float, default=0.5, help="fraction that expires")
    parser.add_argument("--store", default="hbase://127.0.0.1:9090?thrift2_port=9091")
    parser.add_argument("--paths", default="index,scan", help="index, scan or both")
    args = parser.parse_args()
    results = run(args.store, args.rows, args.expired, args.paths.split(","))
    print(f"{args.rows:,} rows, {args.expired:.0%} expired, store {args.store}")
    print(f"{'path':<6} {'rows':>7} {'age_off rows/s':>15} {'delete_many rows/s':>19} {'ratio':>6}")
    parts = []
    for path, (expired, ageoff_s, delete_s, _report) in results.items():
        a, d = expired / ageoff_s, expired / delete_s
        print(f"{path:<6} {expired:>7,} {a:>15,.0f} {d:>19,.0f} {a / d:>6.2f}")
        parts += [f"{path}_ageoff_rps={a:.0f}", f"{path}_delete_rps={d:.0f}"]
        parts.append(f"{path}_ratio={a / d:.2f}")
    print("RESULT " + " ".join(parts))


if __name__ == "__main__":
    main()
