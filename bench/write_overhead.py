"""What keeping indexes consistent costs on writes, against plain happybase batch puts.

Writes N rows of 20 columns five ways in one process on the dev HBase:

- ``plain``: happybase ``Table.batch`` puts of the same cells (no index) — the baseline;
- ``safe_noindex``: ``put_many`` of the N rows into a table with no index;
- ``bulk``: ``IndexedTable.put_many(bulk=True)`` with two indexes (term on ``city``, range on
  ``age``): no read, no version check (insert-only loads);
- ``safe``: ``put_many`` of new keys by the full protocol (read, unverified, conditional
  primary write per row, verified);
- ``update``: ``put_many`` over the same keys again, changing both indexed values, so every
  row's old entries are found, marked and deleted;
- ``safe_presplit``: ``put_many`` of monotonically increasing keys into an indexed table
  whose primary table is salted and pre-split (``primary_buckets``); the rows each primary
  region holds afterwards are printed;
- ``safe_sidecar``, ``update_sidecar``: ``safe`` and ``update`` again on a second indexed
  table (its first half bulk-loaded likewise, untimed), through a store whose conditional
  writes go to the checkAndMutate sidecar in batches (``--sidecar``; ``--sidecar ''`` skips
  them). The other modes make one Thrift2 ``checkAndMutate`` per row.

Prints a table and a last line ``RESULT …`` with rows/s, each throughput ratio to ``plain``
(the goals of issue 13 beside them), this client process's CPU microseconds per row and the
garbage collector's part of them (it walks every live object, the rows held here included).

    python bench/write_overhead.py [--rows 50000] [--hbase 127.0.0.1:9090] [--workers 16]
        [--sidecar 127.0.0.1:9089]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import time
import uuid

import happybase

from culvert_py.client import Client
from culvert_py.layout import encode_row
from culvert_py.schema import parse_schema
from culvert_py.store import open_store
from culvert_py.store.base import CAP_CHECK_AND_MUTATE_MANY

CITIES = [f"city{i:03d}" for i in range(200)]
FILLER = [f"c{i:02d}" for i in range(17)]


def schema(name: str, indexed: bool = True, primary_buckets: int = 1):
    columns = {"id": "str", "city": "str", "age": "int", **{c: "str" for c in FILLER}}
    indexes = {
        "by_city": {"kind": "term", "columns": ["city"]},
        "by_age": {"kind": "range", "columns": ["age"]},
    }
    spec = {"row_key": ["id"], "salt_buckets": 8, "columns": columns}
    if primary_buckets > 1:
        spec["primary_buckets"] = primary_buckets
    return parse_schema({"tables": {name: {**spec, "indexes": indexes if indexed else {}}}})


class _Clock:
    """Wall time, this process's CPU time and the garbage collector's share of it, of one
    timed section (the collector's runs are timed through ``gc.callbacks``)."""

    def __enter__(self):
        self.gc = 0.0
        self._gc_started = 0.0
        gc.callbacks.append(self._on_gc)
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_started = time.process_time()
        else:
            self.gc += time.process_time() - self._gc_started

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        gc.callbacks.remove(self._on_gc)


def make_rows(n: int, seed: int) -> list[dict]:
    rnd = random.Random(seed)
    return [
        {
            "id": f"{(i * 2654435761) & 0xFFFFFFFF:08x}-{i:07d}",
            "city": rnd.choice(CITIES),
            "age": rnd.randrange(100),
            **{c: f"v{i + k:07d}" for k, c in enumerate(FILLER)},
        }
        for i in range(n)
    ]


def region_counts(store, table: str) -> list[int]:
    """Rows in each region of ``table`` (a key-only scan of each region's bounds)."""
    primary = store.table(table)
    return [
        sum(1 for _ in primary.scan(start=r.start or None, stop=r.end or None, columns=[b"d:_v"]))
        for r in store.regions(table)
    ]


GOALS = {
    "safe_noindex": 0.80,
    "bulk": 0.70,
    "safe": 0.34,
    "update": 0.29,
    "safe_sidecar": 0.34,
    "update_sidecar": 0.29,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--hbase", default=os.environ.get("CULVERT_TEST_HBASE", "127.0.0.1:9090"))
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--primary-buckets", type=int, default=8)
    parser.add_argument(
        "--sidecar", default=os.environ.get("CULVERT_TEST_SIDECAR", "127.0.0.1:9089")
    )
    args = parser.parse_args()
    host, port = args.hbase.rsplit(":", 1)

    name = f"bench_w_{uuid.uuid4().hex[:8]}"
    bare = f"{name}_bare"
    split = f"{name}_split"
    store = open_store(f"hbase://{host}:{port}?pool_size={args.workers + 4}")
    db = Client(store, workers=args.workers)
    db.apply_schema(schema(name))
    db.apply_schema(schema(bare, indexed=False))
    db.apply_schema(schema(split, primary_buckets=args.primary_buckets))
    table = db.table(name)
    side = None
    if args.sidecar:
        url = f"hbase://{host}:{port}?pool_size={args.workers + 4}&sidecar={args.sidecar}"
        side = Client(open_store(url), workers=args.workers)
        if CAP_CHECK_AND_MUTATE_MANY not in side.store.capabilities:
            raise SystemExit(f"error: no sidecar answers at {args.sidecar} (--sidecar '' skips)")
        side.apply_schema(schema(f"{name}_sc"))
    rows = make_rows(args.rows, 1)
    results: dict[str, tuple[float, float]] = {}  # mode: (wall s per row, CPU s per row)
    collector: dict[str, float] = {}  # mode: garbage collector's CPU s per row

    def timed(mode: str, call, count: int) -> None:
        with _Clock() as clock:
            call()
        results[mode] = (clock.wall / count, clock.cpu / count)
        collector[mode] = clock.gc / count

    try:
        # Baseline: the same cells, pre-encoded, through plain happybase batches.
        plain_name = f"{name}_plain"
        conn = happybase.Connection(host, int(port), timeout=120_000)
        conn.create_table(plain_name, {"d": {"max_versions": 1, "block_cache_enabled": True}})
        cells = [(r["id"].encode(), encode_row(table.definition, r)[0]) for r in rows]

        def plain() -> None:
            with conn.table(plain_name).batch(batch_size=args.batch_size) as batch:
                for key, c in cells:
                    batch.put(key, c)

        timed("plain", plain, len(rows))
        conn.delete_table(plain_name, disable=True)
        conn.close()

        half = len(rows) // 2
        put = db.table(bare).put_many
        timed("safe_noindex", lambda: put(rows, batch_size=args.batch_size), len(rows))
        put = table.put_many
        timed("bulk", lambda: put(rows[:half], bulk=True, batch_size=args.batch_size), half)
        timed("safe", lambda: put(rows[half:], batch_size=args.batch_size), len(rows) - half)
        rnd = random.Random(2)
        changed = [{**r, "city": rnd.choice(CITIES), "age": rnd.randrange(100)} for r in rows]
        timed("update", lambda: put(changed[half:], batch_size=args.batch_size), len(rows) - half)
        # Monotonically increasing keys into a salted, pre-split primary table.
        increasing = [{**r, "id": f"m{i:09d}"} for i, r in enumerate(rows[:half])]
        put = db.table(split).put_many
        timed("safe_presplit", lambda: put(increasing, batch_size=args.batch_size), half)
        spread = region_counts(store, db.table(split).definition.hbase_table)
        if side is not None:
            put = side.table(f"{name}_sc").put_many
            put(rows[:half], bulk=True, batch_size=args.batch_size)
            timed("safe_sidecar", lambda: put(rows[half:], batch_size=args.batch_size), half)
            timed("update_sidecar", lambda: put(changed[half:], batch_size=args.batch_size), half)
    finally:
        for table_name in (name, bare, split):
            db.drop_table(table_name)
        db.close()
        if side is not None:
            side.drop_table(f"{name}_sc")
            side.close()

    plain_wall = results["plain"][0]
    print(f"{args.rows} rows x 20 columns, 2 indexes (term + range), {args.workers} workers")
    header = f"{'mode':<14}{'rows/s':>10}{'x plain':>9}{'goal':>7}{'client CPU us/row':>19}"
    print(f"{header}{'of it GC':>10}")
    for mode, (wall, cpu) in results.items():
        goal = f">={GOALS[mode]:.2f}" if mode in GOALS else ""
        print(
            f"{mode:<14}{1 / wall:>10,.0f}{plain_wall / wall:>9.2f}{goal:>7}{cpu * 1e6:>19,.0f}"
            f"{collector[mode] * 1e6:>10,.0f}"
        )
    fields = {f"{m}_rows_s": round(1 / w) for m, (w, _) in results.items()}
    fields |= {f"{m}_ratio": round(plain_wall / w, 2) for m, (w, _) in results.items()}
    fields |= {f"{m}_cpu_us": round(c * 1e6) for m, (_, c) in results.items()}
    fields |= {f"{m}_gc_us": round(c * 1e6) for m, c in collector.items()}
    print(
        f"monotonically increasing keys, primary_buckets={args.primary_buckets}: rows per "
        f"primary region {spread} (min/max {min(spread) / max(spread):.2f})"
    )
    fields["presplit_regions"] = len(spread)
    fields["presplit_min_max"] = round(min(spread) / max(spread), 2)
    print(f"RESULT rows={args.rows} " + " ".join(f"{k}={v}" for k, v in fields.items()))


if __name__ == "__main__":
    main()
