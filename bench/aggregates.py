"""Aggregates from the index alone, against fetching the rows, measured in the same run.

Loads N rows (default 200,000) of 16 columns into the dev HBase with two indexes: ``r``
(range; uniform 0-99,999, so a 1,000-wide range is 1%) and ``g`` (term; 50 values). Then,
each against its baseline in the same process:

- ``count(r BETWEEN ...)`` over 1% of the rows (covered: entries only) vs fetching those
  rows through the same index (``query``, every row fetched and counted client-side);
- ``count(group_by="g")`` (every entry of ``by_g``, buckets read in key order) vs a full
  scan of the primary table folding ``g`` client-side.

Every answer is checked against its baseline's. Prints a table and a last line ``RESULT …``.

    python bench/aggregates.py [--rows 200000] [--hbase 127.0.0.1:9090 | --store URL] [--keep]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid
from collections import Counter

from culvert_py import meta
from culvert_py.client import Client
from culvert_py.predicate import col
from culvert_py.query.plan import NO_INDEX
from culvert_py.schema import parse_schema
from culvert_py.store import open_store

FILLER = [f"f{i:02d}" for i in range(13)]
GROUPS = 50


def schema(name: str):
    columns = {"id": "str", "r": "int", "g": "int"} | {c: "str" for c in FILLER}
    return parse_schema(
        {
            "tables": {
                name: {
                    "row_key": ["id"],
                    "salt_buckets": 8,
                    "columns": columns,
                    "indexes": {
                        "by_r": {"kind": "range", "columns": ["r"]},
                        "by_g": {"kind": "term", "columns": ["g"]},
                    },
                }
            }
        }
    )


def rows(n: int):
    rnd = random.Random(n)
    for i in range(n):
        yield {
            "id": f"{(i * 2654435761) & 0xFFFFFFFF:08x}{i:08d}",
            "r": rnd.randrange(100_000),
            "g": rnd.randrange(GROUPS),
            **{c: f"v{(i + k) % 9973:06d}" for k, c in enumerate(FILLER)},
        }


def timed(fn, repeat: int) -> tuple[float, object]:
    """Median seconds of ``repeat`` runs, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--hbase", default=os.environ.get("CULVERT_TEST_HBASE", "127.0.0.1:9090"))
    parser.add_argument("--store", help="a store URL instead (e.g. sqlite:///agg.db)")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the table afterwards")
    parser.add_argument(
        "--private-meta",
        action="store_true",
        help="keep the schema in a meta table of this run's own (a dev HBase shared by "
        "branches may hold schemas this checkout cannot parse); dropped at the end",
    )
    args = parser.parse_args()
    if args.private_meta:
        meta.META_TABLE = f"__culvert_meta_{uuid.uuid4().hex[:8]}"
    host, port = args.hbase.rsplit(":", 1)
    url = args.store or f"hbase://{host}:{port}?pool_size={args.workers + 8}"
    db = Client(open_store(url), args.workers)
    name = f"bench_agg_{uuid.uuid4().hex[:8]}"
    db.apply_schema(schema(name))
    t = db.table(name)
    out: dict[str, float] = {"rows": args.rows}
    try:
        t0 = time.perf_counter()
        t.put_many(rows(args.rows), bulk=True)
        out["load_s"] = round(time.perf_counter() - t0, 1)
        t.refresh_stats()

        where = col("r").between(50_000, 50_999)
        count_s, n = timed(lambda: t.count(where), args.repeat)
        fetch_s, m = timed(lambda: sum(1 for _ in t.query(where)), args.repeat)
        assert n == m, (n, m)
        assert t.plan_aggregate("count", where).path == "index entries"

        group_s, groups = timed(lambda: t.count(group_by="g"), args.repeat)
        scan_s, scanned = timed(
            lambda: Counter(r["g"] for r in t.query(None, use_index=NO_INDEX)), args.repeat
        )
        assert groups == dict(sorted(scanned.items())), "group-by count differs from the scan"
        assert sum(groups.values()) == args.rows

        out |= {
            "range_rows": n,
            "count_ms": round(count_s * 1000, 1),
            "fetch_ms": round(fetch_s * 1000, 1),
            "count_speedup": round(fetch_s / count_s, 2),
            "group_ms": round(group_s * 1000, 1),
            "scan_ms": round(scan_s * 1000, 1),
            "group_speedup": round(scan_s / group_s, 2),
        }
        print(f"{'benchmark':<44}{'culvert_py':>14}{'baseline':>14}{'ratio':>10}{'target':>9}")
        print(
            f"{'count of a 1% range (' + format(n, ',') + ' rows)':<44}"
            f"{out['count_ms']:>11.1f} ms{out['fetch_ms']:>11.1f} ms"
            f"{out['count_speedup']:>9.1f}x{'>= 10x':>9}"
        )
        print(
            f"{'group-by count, term index, ' + format(args.rows, ',') + ' rows':<44}"
            f"{out['group_ms']:>11.1f} ms{out['scan_ms']:>11.1f} ms"
            f"{out['group_speedup']:>9.1f}x{'>= 5x':>9}"
        )
        print("RESULT " + " ".join(f"{k}={v}" for k, v in out.items()))
    finally:
        if not args.keep:
            db.drop_table(name)
            if args.private_meta:
                db.store.delete_table(meta.META_TABLE)
        db.close()


if __name__ == "__main__":
    main()
