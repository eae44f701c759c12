"""Operations: building an index on an existing table, and loading a CSV, vs raw HBase.

Two measurements, each with its baseline in the same run on the dev HBase:

- **build**: N rows (default 50,000, 20 columns) are written to a table with no index;
  a range index on one column is then added (it starts BUILDING) and built with
  ``culvert_py.ops.build_index``. Baseline: a raw happybase scan of the same rows copied
  into a plain table with batched puts (scan-and-copy). Goal (issue 13): build <= 0.8x the
  copy's time.
- **load**: a CSV of M rows (default 20,000) loaded with ``culvert_py.load.load_file``
  (typed, checked, consistent write protocol, two indexes), against plain happybase batch
  puts of the same rows as strings.

Prints a table (with this client process's CPU microseconds per row) and a last line
``RESULT …``.

    python bench/operations.py [--rows 50000] [--load-rows 20000] [--hbase 127.0.0.1:9090]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import tempfile
import time
import uuid

import happybase

from culvert_py.client import Client
from culvert_py.load import load_file
from culvert_py.ops import build_index
from culvert_py.schema import parse_schema
from culvert_py.store import open_store

FILLER = [f"f{i:02d}" for i in range(17)]


def table_spec(indexes: dict) -> dict:
    columns = {"id": "str", "k": "int", "city": "str", **{c: "str" for c in FILLER}}
    return {"row_key": ["id"], "salt_buckets": 8, "columns": columns, "indexes": indexes}


def rows(n: int, seed: int = 1):
    rnd = random.Random(seed)
    for i in range(n):
        yield {
            "id": f"{(i * 2654435761) & 0xFFFFFFFF:08x}{i:08d}",
            "k": rnd.randrange(1_000_000),
            "city": f"city{rnd.randrange(500):03d}",
            **{c: f"v{(i + j) % 9973:06d}" for j, c in enumerate(FILLER)},
        }


def bench_build(host: str, port: int, n: int, workers: int) -> dict:
    db = Client(open_store(f"hbase://{host}:{port}?pool_size={workers + 8}"), workers=workers)
    name = f"bench_b_{uuid.uuid4().hex[:8]}"
    db.apply_schema(parse_schema({"tables": {name: table_spec({})}}))
    table = db.table(name)
    table.put_many(rows(n), bulk=True)
    conn = happybase.Connection(host, port, timeout=120_000)
    copy_name = f"{name}_copy"
    try:
        # Baseline: scan every row and copy it into a plain table, batched.
        conn.create_table(copy_name, {"d": {"max_versions": 1, "block_cache_enabled": True}})
        t0, c0 = time.perf_counter(), time.process_time()
        with conn.table(copy_name).batch(batch_size=1000) as batch:
            for key, cells in conn.table(name).scan(batch_size=1000):
                batch.put(key, cells)
        copy_s, copy_cpu = time.perf_counter() - t0, time.process_time() - c0

        spec = table_spec({"by_k": {"kind": "range", "columns": ["k"], "include": ["city"]}})
        db.apply_schema(parse_schema({"tables": {name: spec}}))
        t0, c0 = time.perf_counter(), time.process_time()
        report = build_index(db, name, "by_k", workers=workers, grace_seconds=0)
        build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0
        assert report.rows_scanned == n, report
    finally:
        conn.delete_table(copy_name, disable=True)
        conn.close()
        db.drop_table(name)
        db.close()
    return {
        "copy_s": copy_s,
        "build_s": build_s,
        "copy_cpu_us": copy_cpu / n * 1e6,
        "build_cpu_us": build_cpu / n * 1e6,
    }


def bench_load(host: str, port: int, n: int, workers: int) -> dict:
    db = Client(open_store(f"hbase://{host}:{port}?pool_size={workers + 8}"), workers=workers)
    name = f"bench_l_{uuid.uuid4().hex[:8]}"
    spec = table_spec(
        {
            "by_city": {"kind": "term", "columns": ["city"]},
            "by_k": {"kind": "range", "columns": ["k"]},
        }
    )
    db.apply_schema(parse_schema({"tables": {name: spec}}))
    conn = happybase.Connection(host, port, timeout=120_000)
    plain = f"{name}_plain"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rows.csv")
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(spec["columns"]))
            writer.writeheader()
            writer.writerows(rows(n, 2))
        try:
            conn.create_table(plain, {"d": {"max_versions": 1, "block_cache_enabled": True}})
            t0 = time.perf_counter()
            with open(path, newline="") as f, conn.table(plain).batch(batch_size=1000) as b:
                for row in csv.DictReader(f):
                    b.put(
                        row["id"].encode(), {f"d:{c}".encode(): v.encode() for c, v in row.items()}
                    )
            plain_s = time.perf_counter() - t0
            t0, c0 = time.perf_counter(), time.process_time()
            report = load_file(db.table(name), path)
            load_s, load_cpu = time.perf_counter() - t0, time.process_time() - c0
            assert report.loaded == n and report.rejected == 0, report.summary()
        finally:
            conn.delete_table(plain, disable=True)
            conn.close()
            db.drop_table(name)
            db.close()
    return {"plain_s": plain_s, "load_s": load_s, "load_cpu_us": load_cpu / n * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--load-rows", type=int, default=20_000)
    parser.add_argument("--hbase", default=os.environ.get("CULVERT_TEST_HBASE", "127.0.0.1:9090"))
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    host, port = args.hbase.rsplit(":", 1)
    build = bench_build(host, int(port), args.rows, args.workers)
    load = bench_load(host, int(port), args.load_rows, args.workers)
    build_ratio = build["build_s"] / build["copy_s"]
    load_ratio = load["load_s"] / load["plain_s"]
    print(f"{'what':<34}{'culvert_py':>14}{'baseline':>14}{'ratio':>9}")
    print(
        f"{f'index build, {args.rows:,} rows':<34}{build['build_s']:>13.1f}s"
        f"{build['copy_s']:>13.1f}s{build_ratio:>8.2f}x  (goal <= 0.80x; baseline: "
        f"scan-and-copy; client CPU {build['build_cpu_us']:.0f} vs {build['copy_cpu_us']:.0f} "
        "us/row)"
    )
    print(
        f"{f'CSV load, {args.load_rows:,} rows':<34}{load['load_s']:>13.1f}s"
        f"{load['plain_s']:>13.1f}s{load_ratio:>8.2f}x  (baseline: plain batch puts; client "
        f"CPU {load['load_cpu_us']:.0f} us/row)"
    )
    print(
        f"RESULT rows={args.rows} build_s={build['build_s']:.1f} copy_s={build['copy_s']:.1f} "
        f"build_ratio={build_ratio:.2f} build_rows_s={args.rows / build['build_s']:.0f} "
        f"build_cpu_us={build['build_cpu_us']:.0f} copy_cpu_us={build['copy_cpu_us']:.0f} "
        f"load_cpu_us={load['load_cpu_us']:.0f} "
        f"load_rows={args.load_rows} load_s={load['load_s']:.1f} plain_s={load['plain_s']:.1f} "
        f"load_ratio={load_ratio:.2f} load_rows_s={args.load_rows / load['load_s']:.0f}"
    )


if __name__ == "__main__":
    main()
