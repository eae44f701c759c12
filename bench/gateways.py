"""Safe-mode writes and indexed queries through one gateway pair against two.

The same process writes N rows (the full write protocol: one conditional Thrift2 call per
row, batched index writes) and runs a few indexed queries, first through the dev HBase's
gateway pair alone, then through it and a second pair of the same cluster, and prints the
ratio. Start the second pair first (it only adds gateways; the cluster is not touched):

    CULVERT_HBASE_DIR=/tmp/gw2 hbase/hbase-local gateway start 9092 9093
    python bench/gateways.py [--rows 3000] [--first 127.0.0.1:9090:9091] \
        [--second 127.0.0.1:9092:9093]
    CULVERT_HBASE_DIR=/tmp/gw2 hbase/hbase-local gateway stop 9092 9093
"""

from __future__ import annotations

import argparse
import time
import uuid

QUERIES = ["city = 'c3'", "age BETWEEN 10 AND 12", "age >= 45 AND city = 'c1'"]


def run(url: str, rows: int) -> dict[str, float]:
    """Write ``rows`` rows and run :data:`QUERIES` through the store ``url``."""
    from culvert_py.client import Client
    from culvert_py.schema import parse_schema
    from culvert_py.store import open_store

    db = Client(open_store(url), workers=16)
    name = f"bench_gw_{uuid.uuid4().hex[:8]}"
    columns = {"id": "str", "age": "int", "city": "str"}
    indexes = {
        "by_age": {"kind": "range", "columns": ["age"]},
        "by_city": {"kind": "term", "columns": ["city"]},
    }
    db.apply_schema(
        parse_schema(
            {"tables": {name: {"row_key": ["id"], "columns": columns, "indexes": indexes}}}
        )
    )
    try:
        table = db.table(name)
        data = [{"id": f"r{i:06d}", "age": i % 50, "city": f"c{i % 7}"} for i in range(rows)]
        t0 = time.perf_counter()
        table.put_many(data)
        write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        found = sum(sum(1 for _ in table.query(q)) for q in QUERIES)
        query_s = time.perf_counter() - t0
        assert found > 0
        return {"write_rows_s": rows / write_s, "query_ms": 1000 * query_s / len(QUERIES)}
    finally:
        db.drop_table(name)
        db.close()


def main() -> None:
    """Run both configurations and print the table and the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--first", default="127.0.0.1:9090:9091")
    parser.add_argument("--second", default="127.0.0.1:9092:9093")
    parser.add_argument("--pool-size", type=int, default=8)
    args = parser.parse_args()
    suffix = f"?pool_size={args.pool_size}"
    one = run(f"hbase://{args.first}{suffix}", args.rows)
    two = run(f"hbase://{args.first},{args.second}{suffix}", args.rows)
    print(f"{'gateways':<10} {'write rows/s':>14} {'query ms':>10}")
    for label, r in (("one pair", one), ("two pairs", two)):
        print(f"{label:<10} {r['write_rows_s']:>14,.0f} {r['query_ms']:>10.1f}")
    print(
        f"RESULT rows={args.rows} one_write_rows_s={one['write_rows_s']:.0f} "
        f"two_write_rows_s={two['write_rows_s']:.0f} "
        f"write_ratio={two['write_rows_s'] / one['write_rows_s']:.2f} "
        f"one_query_ms={one['query_ms']:.1f} two_query_ms={two['query_ms']:.1f} "
        f"query_ratio={two['query_ms'] / one['query_ms']:.2f}"
    )


if __name__ == "__main__":
    main()
