"""Spark jobs against the single-process tools they replace, on the dev HBase.

In one run, on the same generated rows (a CSV file of N rows, 2 indexes):

- ``load``: ``culvert load`` of the file (:func:`culvert_py.load.load_file`, what the CLI
  runs) into table A — the baseline;
- ``spark write``: the same file read by Spark (``local[2]`` by default) and written into
  table B by :func:`culvert_py.spark.write`, same mode;
- ``build``: a third index added to both tables, built on A by ``culvert index build``
  (:func:`culvert_py.ops.build_index`, 8 workers) — the baseline — and on B by
  :func:`culvert_py.spark.build_index`.

The session's start-up is timed apart (a cluster pays it once per application). Per-task
throughput is rows per second of each task's own wall time: what one executor core does,
so the job's rate is roughly that times the executors. Prints a table and a last line
``RESULT …`` with the ratios (Spark time / baseline time).

    python bench/spark.py [--rows 20000] [--hbase 127.0.0.1:9090 | --store URL] [--master local[2]]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import tempfile
import time
import uuid

from culvert_py import ops
from culvert_py import spark as jobs
from culvert_py.client import Client
from culvert_py.load import load_file
from culvert_py.schema import parse_schema
from culvert_py.store import open_store

CITIES = [f"city{i:03d}" for i in range(200)]


def schema(name: str, third: bool = False):
    indexes = {
        "by_city": {"kind": "term", "columns": ["city"]},
        "by_age": {"kind": "range", "columns": ["age"]},
    }
    if third:
        indexes["by_name"] = {"kind": "term", "columns": ["name"]}
    columns = {"id": "str", "name": "str", "city": "str", "age": "int", "note": "str"}
    spec = {"row_key": ["id"], "salt_buckets": 8, "columns": columns, "indexes": indexes}
    return parse_schema({"tables": {name: spec}})


def write_csv(path: str, n: int, seed: int) -> None:
    rnd = random.Random(seed)
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "name", "city", "age", "note"])
        for i in range(n):
            writer.writerow(
                [
                    f"{(i * 2654435761) & 0xFFFFFFFF:08x}-{i:07d}",
                    f"name{rnd.randrange(5000)}",
                    rnd.choice(CITIES),
                    rnd.randrange(100),
                    "x" * rnd.randrange(40),
                ]
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--hbase", default=os.environ.get("CULVERT_TEST_HBASE", "127.0.0.1:9090"))
    parser.add_argument("--store", help="Any store URL instead of --hbase (sqlite:////tmp/b.db).")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--mode", choices=jobs.MODES, default="safe")
    parser.add_argument("--partitions", type=int, default=4, help="Spark write partitions.")
    args = parser.parse_args()
    url = args.store or f"hbase://{args.hbase}?thrift2_port=9091&pool_size=16"
    tag = uuid.uuid4().hex[:8]
    a, b = f"bench_load_{tag}", f"bench_spark_{tag}"
    client = Client(open_store(url), workers=16)
    tmp = tempfile.mkdtemp(prefix="culvert-bench-spark-")
    path = os.path.join(tmp, "rows.csv")
    write_csv(path, args.rows, seed=1)
    figures = {}
    try:
        for name in (a, b):
            client.apply_schema(schema(name))
        t0 = time.perf_counter()
        session = jobs.spark_session(args.master, app_name="bench-spark")
        session.sparkContext.setLogLevel("ERROR")
        figures["session_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        loaded = load_file(client.table(a), path, bulk=args.mode == "bulk")
        figures["load_s"] = time.perf_counter() - t0
        assert loaded.loaded == args.rows, loaded.summary()

        frame = session.read.option("header", True).csv(path).repartition(args.partitions)
        t0 = time.perf_counter()
        written = jobs.write(frame, url, b, mode=args.mode)
        figures["write_s"] = time.perf_counter() - t0
        assert written.written == args.rows, written.summary()
        per_task = [t.rows / t.seconds for t in written.tasks if t.rows and t.seconds > 0]

        for name in (a, b):
            client.apply_schema(schema(name, third=True))
        t0 = time.perf_counter()
        built = ops.build_index(client, a, "by_name", workers=8, grace_seconds=0)
        figures["build_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        sbuilt = jobs.build_index(session, url, b, "by_name", grace_seconds=0)
        figures["spark_build_s"] = time.perf_counter() - t0
        assert built.rows_scanned == sbuilt.rows_scanned == args.rows
        build_tasks = [r / s for _, r, _, s in sbuilt.tasks if r and s > 0]
    finally:
        for name in (a, b):
            client.drop_table(name)
        client.close()

    n = args.rows
    rows = [
        ("Spark session start", figures["session_s"], None),
        (f"culvert load ({args.mode})", figures["load_s"], n / figures["load_s"]),
        (
            f"Spark write ({args.mode}, {args.partitions} tasks)",
            figures["write_s"],
            n / figures["write_s"],
        ),
        ("culvert index build (8 workers)", figures["build_s"], n / figures["build_s"]),
        (
            f"Spark build_index ({len(sbuilt.tasks)} tasks)",
            figures["spark_build_s"],
            n / figures["spark_build_s"],
        ),
    ]
    print(f"{args.rows:,} rows, 2 indexes (+1 built), {args.master}, store {url}")
    print(f"{'step':<40}{'seconds':>10}{'rows/s':>12}")
    for what, seconds, rate in rows:
        print(f"{what:<40}{seconds:>10.2f}{(f'{rate:,.0f}' if rate else '-'):>12}")
    write_ratio = figures["write_s"] / figures["load_s"]
    build_ratio = figures["spark_build_s"] / figures["build_s"]
    task_write = statistics.median(per_task) if per_task else 0.0
    task_build = statistics.median(build_tasks) if build_tasks else 0.0
    print(
        f"per-task rows/s (median of tasks with rows): write {task_write:,.0f} "
        f"({len(per_task)} tasks), build {task_build:,.0f} ({len(build_tasks)} tasks)"
    )
    print(
        f"RESULT rows={n} mode={args.mode} write_vs_load={write_ratio:.2f}x "
        f"build_vs_cli={build_ratio:.2f}x task_write_rps={task_write:.0f} "
        f"task_build_rps={task_build:.0f} session_s={figures['session_s']:.1f}"
    )


if __name__ == "__main__":
    main()
