"""DataFrames: answers as Arrow and pandas, Parquet out and in, against the row paths.

Each measurement has its baseline in the same run, on one table of every column type (N rows,
default 20,000, a range index on ``k``):

- **to_arrow**: ``query(...).to_arrow()`` of a range matching about half the rows, against
  ``list(query(...))`` (the row dicts it is built from): the cost of the columns.
- **to_pandas**: ``query(...).to_pandas()`` against the same list of dicts.
- **parquet out**: ``culvert query --format parquet`` (record batches to a Parquet file)
  against ``--format csv`` (rendered lines to a file), same query, in process.
- **parquet load**: ``load_file`` of a Parquet file against a CSV file of the same rows,
  into fresh tables (the consistent write protocol dominates both).
- **memory**: the peak Python heap (``tracemalloc``) while ``to_arrow()`` runs, plus the
  Arrow buffers it ends with, against the peak of ``list(query(...))``: the answer is held
  once, as columns, with only one batch of row dicts alive at a time.

Prints a table and a last line ``RESULT …``.

    python bench/frames.py [--rows 20000] [--store hbase://127.0.0.1:9090?thrift2_port=9091]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from culvert_cli.output import write_output
from culvert_py.client import Client
from culvert_py.frames import arrow_schema
from culvert_py.load import load_file
from culvert_py.schema import parse_schema
from culvert_py.store import open_store

COLUMNS = {
    "id": "str", "k": "int", "x": "float", "name": "str", "blob": "bytes", "on": "bool",
    "at": "datetime", "note": "str",
}  # fmt: skip


def spec() -> dict:
    return {
        "row_key": ["id"],
        "salt_buckets": 8,
        "columns": COLUMNS,
        "indexes": {"by_k": {"kind": "range", "columns": ["k"]}},
    }


def rows(n: int, seed: int = 1) -> list[dict]:
    rnd = random.Random(seed)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        out.append(
            {
                "id": f"{(i * 2654435761) & 0xFFFFFFFF:08x}{i:07d}",
                "k": rnd.randrange(1_000_000),
                "x": None if i % 11 == 0 else rnd.random() * 1000,
                "name": f"person {i}",
                "blob": rnd.randbytes(8),
                "on": None if i % 7 == 0 else bool(i % 2),
                "at": base + timedelta(seconds=rnd.randrange(10**7)),
                "note": "lorem ipsum " * (i % 4),
            }
        )
    return out


def timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def best(fn, repeat: int):
    times = []
    value = None
    for _ in range(repeat):
        seconds, value = timed(fn)
        times.append(seconds)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--store",
        default=os.environ.get("CULVERT_STORE", "hbase://127.0.0.1:9090?thrift2_port=9091"),
    )
    args = parser.parse_args()
    data = rows(args.rows)
    db = Client(open_store(args.store), workers=16)
    names = [f"bench_fr_{uuid.uuid4().hex[:8]}_{n}" for n in ("q", "csv", "pq")]
    tmp = tempfile.mkdtemp()
    try:
        db.apply_schema(parse_schema({"tables": {n: spec() for n in names}}))
        table = db.table(names[0])
        table.put_many(data, bulk=True)
        where = "k < 500000"
        matching = sum(1 for r in data if r["k"] < 500_000)

        dicts_s, got = best(lambda: list(table.query(where)), args.repeat)
        assert len(got) == matching
        arrow_s, got = best(lambda: table.query(where).to_arrow(), args.repeat)
        assert got.num_rows == matching
        pandas_s, got = best(lambda: table.query(where).to_pandas(), args.repeat)
        assert len(got) == matching

        def peak(fn) -> tuple[int, object]:
            tracemalloc.start()
            value = fn()
            top = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            return top, value

        arrow_before = pa.total_allocated_bytes()
        arrow_heap, answer = peak(lambda: table.query(where).to_arrow(batch_size=1000))
        arrow_mem = arrow_heap + pa.total_allocated_bytes() - arrow_before
        del answer
        dicts_mem, answer = peak(lambda: list(table.query(where)))
        del answer

        columns = list(COLUMNS)
        csv_path, pq_path = os.path.join(tmp, "out.csv"), os.path.join(tmp, "out.parquet")
        csv_out_s, count = best(
            lambda: write_output(table.query(where), columns, "csv", None, csv_path), args.repeat
        )
        assert count == matching
        pq_out_s, count = best(
            lambda: write_output(table.query(where), columns, "parquet", None, pq_path),
            args.repeat,
        )
        assert count == matching

        # Loads: the same rows as CSV and as Parquet, each into a fresh table.
        source_csv = os.path.join(tmp, "in.csv")
        source_pq = os.path.join(tmp, "in.parquet")
        all_query = table.query()
        write_output(all_query, columns, "csv", None, source_csv)
        schema = arrow_schema(table.definition)
        pq.write_table(pa.Table.from_pylist(data, schema=schema), source_pq)
        csv_load_s, report = timed(lambda: load_file(db.table(names[1]), source_csv))
        assert report.loaded == args.rows and not report.rejected, report.summary()
        pq_load_s, report = timed(lambda: load_file(db.table(names[2]), source_pq))
        assert report.loaded == args.rows and not report.rejected, report.summary()
    finally:
        for name in names:
            try:
                db.drop_table(name)
            except Exception as exc:  # cleanup goes on for the other tables
                print(f"cleanup of {name} failed: {exc}")
        db.close()

    print(f"store {args.store.split('?')[0]}; {args.rows:,} rows; query matches {matching:,}")
    print(f"{'what':<28}{'subject':>12}{'baseline':>12}{'ratio':>8}")
    lines = [
        ("to_arrow vs list of dicts", arrow_s, dicts_s),
        ("to_pandas vs list of dicts", pandas_s, dicts_s),
        ("parquet out vs csv out", pq_out_s, csv_out_s),
        ("parquet load vs csv load", pq_load_s, csv_load_s),
    ]
    for label, subject, baseline in lines:
        print(f"{label:<28}{subject:>11.3f}s{baseline:>11.3f}s{subject / baseline:>7.2f}x")
    mib = 1 << 20
    print(
        f"{'memory: to_arrow vs dicts':<28}{arrow_mem / mib:>10.1f}MB{dicts_mem / mib:>10.1f}MB"
        f"{arrow_mem / dicts_mem:>7.2f}x"
    )
    print(
        f"RESULT rows={args.rows} matching={matching} "
        f"arrow_ratio={arrow_s / dicts_s:.2f} pandas_ratio={pandas_s / dicts_s:.2f} "
        f"parquet_out_ratio={pq_out_s / csv_out_s:.2f} "
        f"parquet_load_ratio={pq_load_s / csv_load_s:.2f} "
        f"arrow_rows_per_s={matching / arrow_s:.0f} memory_ratio={arrow_mem / dicts_mem:.2f} "
        f"parquet_load_rows_per_s={args.rows / pq_load_s:.0f}"
    )


if __name__ == "__main__":
    main()
