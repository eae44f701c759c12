"""A region server killed (SIGKILL) in the middle of an indexed load loses nothing.

Runs on ``hbase/hbase-local cluster``: ZooKeeper, a master and two region servers as
separate processes on the local filesystem (WAL on local disk), on ports of their own
(ZooKeeper 2281, master 16100, Thrift 9190/9191), never the shared dev server. The fixture
starts it in a directory of its own (or reuses the one ``CULVERT_TEST_CLUSTER_DIR`` names)
and stops what it started. Every wait is bounded.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from culvert_py.client import Client
from culvert_py.errors import TransientStoreError
from culvert_py.load import load_file
from culvert_py.ops import verify_index
from culvert_py.predicate import matches, parse
from culvert_py.schema import parse_schema
from culvert_py.store import open_store

pytestmark = pytest.mark.hbase

HBASE_LOCAL = Path(__file__).resolve().parent.parent / "hbase" / "hbase-local"
URL = "hbase://127.0.0.1:9190?thrift2_port=9191&pool_size=8&retry_seconds=180"
COLUMNS = {"id": "str", "age": "int", "city": "str"}
QUERIES = ["city = 'c3'", "age BETWEEN 10 AND 12", "age >= 45 AND city = 'c1'"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``control(*args)`` runs ``hbase-local cluster ARGS`` on a running cluster."""
    given = os.environ.get("CULVERT_TEST_CLUSTER_DIR")
    env = {
        **os.environ,
        "CULVERT_HBASE_DIR": given or str(tmp_path_factory.mktemp("cluster")),
        "CULVERT_HBASE_START_TIMEOUT": "420",
    }

    def control(*args: str) -> str:
        proc = subprocess.run(
            [str(HBASE_LOCAL), "cluster", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=480,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    control("start")
    yield control
    if not given:
        control("stop")


def schema(name: str):
    return parse_schema(
        {
            "tables": {
                name: {
                    "row_key": ["id"],
                    "columns": COLUMNS,
                    "salt_buckets": 4,
                    "indexes": {
                        "by_age": {"kind": "range", "columns": ["age"]},
                        "by_city": {"kind": "term", "columns": ["city"]},
                    },
                }
            }
        }
    )


def test_a_region_server_killed_mid_load_loses_nothing(cluster, tmp_path):
    db = Client(open_store(URL), workers=8)
    name = f"rs_{uuid.uuid4().hex[:8]}"
    db.apply_schema(schema(name))
    table = db.table(name)
    rows = [{"id": f"r{i:06d}", "age": i % 50, "city": f"c{i % 7}"} for i in range(3_000)]
    path = tmp_path / "rows.csv"
    path.write_text("id,age,city\n" + "".join(f"{r['id']},{r['age']},{r['city']}\n" for r in rows))
    done: list[float] = []
    killed = threading.Event()

    def progress(read: int, total: int) -> None:
        done.append(time.monotonic())
        if read > total // 5 and not killed.is_set():
            killed.set()
            threading.Thread(target=lambda: cluster("kill-rs", "1"), daemon=True).start()

    try:
        started = time.monotonic()
        report = load_file(table, path, batch_size=200, progress=progress)
        took = time.monotonic() - started
        assert killed.is_set()
        assert report.loaded == len(rows) and report.rejected == 0
        assert {r["id"]: r for r in table.scan_rows()} == {r["id"]: r for r in rows}
        for where in QUERIES:
            predicate = parse(where, COLUMNS)
            want = {r["id"] for r in rows if matches(predicate, r)}
            assert {r["id"] for r in table.query(where)} == want
        for index in ("by_age", "by_city"):
            assert verify_index(db, name, index).clean
        gaps = [b - a for a, b in itertools.pairwise(done)]
        print(
            f"load {took:.1f} s; longest pause between batches {max(gaps):.1f} s "
            f"(median {sorted(gaps)[len(gaps) // 2]:.2f} s)"
        )
    finally:
        cluster("start-rs", "1")
        db.drop_table(name)
        db.close()


def test_a_cluster_that_stays_down_fails_with_a_clear_error(cluster):
    db = Client(open_store(URL), workers=4)
    name = f"rsd_{uuid.uuid4().hex[:8]}"
    db.apply_schema(schema(name))
    table = db.table(name)
    table.put({"id": "a", "age": 1, "city": "x"})
    cluster("kill-rs", "1")
    cluster("kill-rs", "2")
    try:
        with open_store(URL.replace("retry_seconds=180", "retry_seconds=5&timeout_ms=5000")) as s:
            short = Client(s, workers=4, close_store=False)
            started = time.monotonic()
            with pytest.raises(TransientStoreError) as err:
                short.table(name).put({"id": "b", "age": 2, "city": "y"})
            assert time.monotonic() - started < 120
            assert "is HBase up?" in str(err.value) and "\n" not in str(err.value)
            short.close()
    finally:
        cluster("start-rs", "1")
        cluster("start-rs", "2")
        db.drop_table(name)
        db.close()
