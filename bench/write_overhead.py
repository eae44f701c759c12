"""What keeping indexes consistent costs on writes, against plain happybase batch puts.

Writes N rows of 20 columns four ways in one process on the dev HBase:

- ``plain``: happybase ``Table.batch`` puts of the same cells (no index) — the baseline;
- ``bulk``: ``IndexedTable.put_many(bulk=True)`` with two indexes (term on ``city``, range on
  ``age``): no read, no version check (insert-only loads);
- ``safe``: ``put_many`` of new keys by the full protocol (read, unverified, conditional
  primary write per row, verified);
- ``update``: ``put_many`` over the same keys again, changing both indexed values, so every
  row's old entries are found, marked and deleted.

Prints a table and a last line ``RESULT …`` with rows/s and each ratio to ``plain``.

    python bench/write_overhead.py [--rows 100000] [--hbase 127.0.0.1:9090] [--workers 16]
"""

from __future__ import annotations

import argparse
import os
import random
import time
import uuid

import happybase

from culvert_py.client import Client
from culvert_py.layout import encode_row
from culvert_py.schema import parse_schema
from culvert_py.store import open_store

CITIES = [f"city{i:03d}" for i in range(200)]
FILLER = [f"c{i:02d}" for i in range(17)]


def schema(name: str):
    columns = {"id": "str", "city": "str", "age": "int", **{c: "str" for c in FILLER}}
    return parse_schema(
        {
            "tables": {
                name: {
                    "row_key": ["id"],
                    "salt_buckets": 8,
                    "columns": columns,
                    "indexes": {
                        "by_city": {"kind": "term", "columns": ["city"]},
                        "by_age": {"kind": "range", "columns": ["age"]},
                    },
                }
            }
        }
    )


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--hbase", default=os.environ.get("CULVERT_TEST_HBASE", "127.0.0.1:9090"))
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    host, port = args.hbase.rsplit(":", 1)

    name = f"bench_w_{uuid.uuid4().hex[:8]}"
    store = open_store(f"hbase://{host}:{port}?pool_size={args.workers + 4}")
    db = Client(store, workers=args.workers)
    db.apply_schema(schema(name))
    table = db.table(name)
    rows = make_rows(args.rows, 1)
    results: dict[str, float] = {}
    try:
        # Baseline: the same cells, pre-encoded, through plain happybase batches.
        plain_name = f"{name}_plain"
        conn = happybase.Connection(host, int(port), timeout=120_000)
        conn.create_table(plain_name, {"d": {"max_versions": 1, "block_cache_enabled": True}})
        cells = [(r["id"].encode(), encode_row(table.definition, r)[0]) for r in rows]
        t0 = time.perf_counter()
        with conn.table(plain_name).batch(batch_size=args.batch_size) as batch:
            for key, c in cells:
                batch.put(key, c)
        results["plain"] = time.perf_counter() - t0
        conn.delete_table(plain_name, disable=True)
        conn.close()

        half = len(rows) // 2
        t0 = time.perf_counter()
        table.put_many(rows[:half], bulk=True, batch_size=args.batch_size)
        results["bulk"] = (time.perf_counter() - t0) * len(rows) / half
        t0 = time.perf_counter()
        table.put_many(rows[half:], batch_size=args.batch_size)
        results["safe"] = (time.perf_counter() - t0) * len(rows) / (len(rows) - half)
        rnd = random.Random(2)
        changed = [{**r, "city": rnd.choice(CITIES), "age": rnd.randrange(100)} for r in rows]
        t0 = time.perf_counter()
        table.put_many(changed[half:], batch_size=args.batch_size)
        results["update"] = (time.perf_counter() - t0) * len(rows) / (len(rows) - half)
    finally:
        db.drop_table(name)
        db.close()

    print(f"{args.rows} rows x 20 columns, 2 indexes (term + range), {args.workers} workers")
    print(f"{'mode':<8}{'seconds/100k':>14}{'rows/s':>12}{'x plain':>10}")
    for mode, seconds in results.items():
        per_100k = seconds * 100_000 / args.rows
        ratio = seconds / results["plain"]
        print(f"{mode:<8}{per_100k:>14.2f}{args.rows / seconds:>12,.0f}{ratio:>10.2f}")
    fields = {f"{m}_rows_s": round(args.rows / s) for m, s in results.items()}
    fields |= {f"{m}_ratio": round(s / results["plain"], 2) for m, s in results.items()}
    print(f"RESULT rows={args.rows} " + " ".join(f"{k}={v}" for k, v in fields.items()))


if __name__ == "__main__":
    main()
