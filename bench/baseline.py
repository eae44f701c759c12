"""Physical limits every later benchmark is measured against.

Writes N rows of ~20 small columns and scans them back, four ways in one process:
raw happybase (``Table.batch`` / ``Table.scan``) on the dev HBase, culvert_py's HBase store
(``put_many`` / ``scan``) on the same server, and culvert_py's SQLite store. Prints a table
and a last line ``RESULT key=value …`` (rows/s, and the store's ratio to raw happybase).

    python bench/baseline.py [--rows 100000] [--hbase 127.0.0.1:9090] [--no-hbase]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

COLUMNS = 20


def make_row(i: int) -> tuple[bytes, dict[bytes, bytes]]:
    """Row ``i``: a spread-out key and 20 small columns (~8 bytes each)."""
    key = b"%08x-%08d" % ((i * 2654435761) & 0xFFFFFFFF, i)
    return key, {b"d:c%02d" % c: b"v%07d" % (i + c) for c in range(COLUMNS)}


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bench_raw_happybase(host: str, port: int, rows: int) -> dict[str, float]:
    import happybase

    conn = happybase.Connection(host, port, timeout=120_000)
    name = f"bench_raw_{uuid.uuid4().hex[:8]}"
    conn.create_table(name, {"d": {"max_versions": 1, "block_cache_enabled": True}})
    table = conn.table(name)
    try:

        def put() -> None:
            with table.batch(batch_size=1000) as batch:
                for i in range(rows):
                    key, cells = make_row(i)
                    batch.put(key, cells)

        put_s, _ = timed(put)
        scan_s, n = timed(lambda: sum(1 for _ in table.scan(batch_size=1000)))
        assert n == rows, (n, rows)
    finally:
        conn.delete_table(name, disable=True)
        conn.close()
    return {"put_rows_s": rows / put_s, "scan_rows_s": rows / scan_s}


def bench_store(url: str, rows: int) -> dict[str, float]:
    from culvert_py.store import open_store

    with open_store(url) as store:
        name = f"bench_store_{uuid.uuid4().hex[:8]}"
        store.create_table(name, ["d"])
        table = store.table(name)
        try:
            ts = int(time.time() * 1000)
            put_s, _ = timed(lambda: table.put_many((make_row(i) for i in range(rows)), ts))
            scan_s, n = timed(lambda: sum(1 for _ in table.scan(batch_size=1000)))
            assert n == rows, (n, rows)
        finally:
            store.delete_table(name)
    return {"put_rows_s": rows / put_s, "scan_rows_s": rows / scan_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--hbase", default=os.environ.get("CULVERT_TEST_HBASE", "127.0.0.1:9090"))
    parser.add_argument("--no-hbase", action="store_true", help="only the SQLite store")
    args = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    if not args.no_hbase:
        host, port = args.hbase.rsplit(":", 1)
        results["happybase_raw"] = bench_raw_happybase(host, int(port), args.rows)
        results["hbase_store"] = bench_store(f"hbase://{host}:{port}", args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite_store"] = bench_store(f"sqlite:///{tmp}/bench.db", args.rows)

    print(f"{args.rows} rows x {COLUMNS} columns")
    print(f"{'subject':<16}{'put rows/s':>14}{'scan rows/s':>14}")
    for subject, r in results.items():
        print(f"{subject:<16}{r['put_rows_s']:>14,.0f}{r['scan_rows_s']:>14,.0f}")
    fields = {"rows": args.rows}
    for subject, r in results.items():
        fields[f"{subject}_put_rows_s"] = round(r["put_rows_s"])
        fields[f"{subject}_scan_rows_s"] = round(r["scan_rows_s"])
    if "happybase_raw" in results:
        raw = results["happybase_raw"]
        fields["store_vs_raw_put"] = round(
            results["hbase_store"]["put_rows_s"] / raw["put_rows_s"], 2
        )
        fields["store_vs_raw_scan"] = round(
            results["hbase_store"]["scan_rows_s"] / raw["scan_rows_s"], 2
        )
    print("RESULT " + " ".join(f"{k}={v}" for k, v in fields.items()))


if __name__ == "__main__":
    main()
