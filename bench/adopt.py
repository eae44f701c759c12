"""Adopted tables: build over a foreign table, sync vs rebuild, query latency vs native.

A "foreign" table is written as a Java service would write it: raw cells through the store
API in Java's encodings (``Bytes.toBytes(String/int/double/long/boolean)``, spelled out with
:mod:`struct`), five columns (utf8 email, int32 age, float64 balance, epoch_millis signup,
bool active), pre-split into ``--regions`` regions, every cell an hour old. Then, each against
its baseline in the same run:

1. **build vs raw scan** (target <= 1.3x): ``apply_schema`` of an adopted schema
   (``existing = true``) with one range index (``age``), then ``ops.build_index`` with
   ``--workers`` workers; baseline: a raw parallel scan of the whole table through the store
   (one scan per region on a pool of ``--workers`` threads, every cell read; median of
   ``--repeat`` after one warm-up scan). A second baseline, scan-and-copy (as
   bench/operations.py uses): the same parallel scan writing every row into a plain
   pre-split table with batched puts, since a build writes (one entry and one version cell
   per row) where a scan only reads.
2. **sync vs rebuild** (target >= 10x): ``--changed`` (1%) of the rows get a new age and
   balance behind culvert_py's back (raw puts at "now"), then ``ops.sync_index`` (margin
   ``--margin`` s: the window reaches back to the build mark less the margin, never to the
   hour-old load) against ``ops.rebuild_index`` of ``by_age``.
3. **query latency, adopted vs native** (target p50 <= 1.1x): a term index on ``email`` is
   added to the adopted table and built; a native table with the same columns and indexes is
   loaded with the same (current) rows through ``put_many(bulk=True)``. The same ``--queries``
   point lookups (``email = ...``) and narrow ranges (``age = a``, ``--range-limit`` rows)
   run on both, interleaved; p50/p90 per kind. Non-covered queries only: an adopted table
   checks every entry against its row, so a covered plan has no counterpart there. Every
   answer is compared between the two tables.

Every table it creates is dropped at the end (``--keep`` keeps them). The run keeps its
schema in a meta table of its own (``__culvert_meta_bench_<tag>``, deleted at the end): on a
shared dev HBase, other users' schemas (written by other versions of culvert_py) then can
neither break its steps nor see its tables. Prints a small table per
section as it finishes and a last line ``RESULT build_vs_scan=… sync_speedup=…
query_p50_ratio=… rows=…``; "client CPU" is this process's CPU time (all threads) during the
subject: near its wall time, the subject is bound by Python, not by HBase.

``--flush`` flushes the foreign table to store files after the load and after the build (a
JVM on the jars hbase/hbase-local resolved; neither Thrift gateway can flush), as HBase itself
does within the hour: a sync's time-range scan then skips the hour-old files, where without
it the region servers filter every cell still in the memstore. ``--profile DIR`` writes a
cProfile of each subject, pool threads included (the times of a profiled run are inflated).

Runs on the dev HBase (default) or SQLite (``--store sqlite:///bench.db``). On this 2-core
machine (shared): the default 200,000 rows take about 4-5 minutes, ``--rows 20000`` on SQLite
about 25 s. ``--rows 1000000`` (the size issue 10 names) takes about 20 minutes: the load
about 1 minute, and every step after it about five times its 200,000-row time (the builds and
the native load are linear in the rows, the queries are not); a run here reached the rebuild
after about 8 minutes.

    python bench/adopt.py [--rows 200000] [--store hbase://127.0.0.1:9090?thrift2_port=9091]
        [--regions 4] [--workers 8] [--changed 0.01] [--queries 200] [--flush] [--profile DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import resource
import shutil
import statistics
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import thread as futures_thread
from datetime import UTC, datetime, timedelta

import culvert_py.meta as culvert_meta
from culvert_py import ops
from culvert_py.client import Client
from culvert_py.clock import now_ms
from culvert_py.ops.sync import SYNC_DOC
from culvert_py.predicate import col
from culvert_py.query.plan import IndexScan
from culvert_py.schema import parse_schema
from culvert_py.store import open_store
from culvert_py.store.base import chunks

DEFAULT_STORE = "hbase://127.0.0.1:9090?thrift2_port=9091"
HOUR_MS = 3_600_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_AGE, MAX_AGE = 18, 99

COLUMNS = {
    "user_id": "str",
    "email": {"type": "str", "cell": "info:email"},
    "age": {"type": "int", "cell": "info:age", "codec": "int32"},
    "balance": {"type": "float", "cell": "info:bal", "codec": "float64"},
    "signup": {"type": "datetime", "cell": "info:ts", "codec": "epoch_millis"},
    "active": {"type": "bool", "cell": "info:on", "codec": "bool"},
}
BY_AGE = {"by_age": {"kind": "range", "columns": ["age"]}}
BY_EMAIL = {"by_email": {"kind": "term", "columns": ["email"]}}


def adopted_schema(name: str, foreign: str, indexes: dict):
    spec = {
        "existing": True,
        "hbase_table": foreign,
        "family": "info",
        "row_key": ["user_id"],
        "row_key_codec": "utf8",
        "columns": COLUMNS,
        "indexes": indexes,
    }
    return parse_schema({"tables": {name: spec}})


def native_schema(name: str):
    columns = {c: (t if isinstance(t, str) else t["type"]) for c, t in COLUMNS.items()}
    spec = {"row_key": ["user_id"], "columns": columns, "indexes": BY_AGE | BY_EMAIL}
    return parse_schema({"tables": {name: spec}})


def key_of(i: int) -> str:
    """Row keys spread over the key space (hash prefix), as a service's user ids might be."""
    return f"{(i * 2654435761) & 0xFFFFFFFF:08x}-{i:08d}"


def split_keys(regions: int) -> list[bytes]:
    return [f"{k * 2**32 // regions:08x}".encode() for k in range(1, regions)]


def make_rows(n: int, changed: dict[int, tuple[int, float]] | None = None, seed: int = 1):
    """The rows as the application sees them: ``(i, row)``, deterministic for ``seed``;
    ``changed`` overrides age and balance of some rows (the foreign updates)."""
    rnd = random.Random(seed)
    for i in range(n):
        age = rnd.randint(MIN_AGE, MAX_AGE)
        balance = round(rnd.uniform(-100.0, 10_000.0), 2)
        signup = 1_500_000_000_000 + rnd.randrange(300_000_000_000)
        active = rnd.random() < 0.7
        if changed and i in changed:
            age, balance = changed[i]
        yield (
            i,
            {
                "user_id": key_of(i),
                "email": f"user{i}@example.org",
                "age": age,
                "balance": balance,
                "signup": signup,
                "active": active,
            },
        )


def java_cells(row: dict) -> dict[bytes, bytes]:
    """What a Java service writes: ``Bytes.toBytes(...)`` of each field."""
    return {
        b"info:email": row["email"].encode(),
        b"info:age": struct.pack(">i", row["age"]),
        b"info:bal": struct.pack(">d", row["balance"]),
        b"info:ts": struct.pack(">q", row["signup"]),
        b"info:on": b"\xff" if row["active"] else b"\x00",
    }


def native_row(row: dict) -> dict:
    return row | {"signup": EPOCH + timedelta(milliseconds=row["signup"])}


def cpu_seconds() -> float:
    """User + system CPU of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


FLUSH_JAVA = """
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.hbase.HBaseConfiguration;
import org.apache.hadoop.hbase.TableName;
import org.apache.hadoop.hbase.client.*;
public class Flush {
  public static void main(String[] args) throws Exception {
    Configuration conf = HBaseConfiguration.create();
    String zk = System.getenv().getOrDefault("CULVERT_FOREIGN_ZK", "127.0.0.1");
    conf.set("hbase.zookeeper.quorum", zk);
    try (Connection c = ConnectionFactory.createConnection(conf); Admin a = c.getAdmin()) {
      for (String t : args) a.flush(TableName.valueOf(t));
    }
  }
}
"""


def flush_table(table: str) -> float:
    """Flush ``table``'s memstores to store files (``Admin.flush``), as HBase does by itself
    within the hour (``hbase.regionserver.optionalcacheflushinterval``): neither Thrift
    gateway can, so a JVM on the jars hbase/hbase-local resolved does it. Returns seconds."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    classpath = os.path.join(repo, "hbase", "target", "classpath.txt")
    java = shutil.which("java")
    if java is None or not os.path.exists(classpath):
        raise SystemExit(f"--flush needs java and {classpath} (run hbase/hbase-local once)")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "Flush.java")
        with open(source, "w") as f:
            f.write(FLUSH_JAVA)
        with open(classpath) as f:
            cp = f.read().strip()
        subprocess.run(
            [java, "-Xmx256m", "-cp", cp, source, table], check=True, capture_output=True
        )
    return time.perf_counter() - t0


def quantile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


class Profiler:
    """cProfile of a subject when ``--profile DIR`` is given: one ``DIR/<subject>.prof``.

    The subjects do their work on thread pools, which a plain ``cProfile.runcall`` does not
    see: while profiling, every pool work item runs under a profiler of its own thread, and
    the threads' profiles are merged with the calling thread's (cumulative times add up over
    threads). cProfile slows Python-heavy code about twofold: the printed times of a
    profiled run are not the figures.
    """

    def __init__(self, directory: str | None) -> None:
        self.directory = directory

    def run(self, label: str, fn):
        if not self.directory:
            return fn()
        os.makedirs(self.directory, exist_ok=True)
        profiles: dict[int, cProfile.Profile] = {}
        lock = threading.Lock()
        original = futures_thread._WorkItem.run

        def profiled(item) -> None:
            with lock:
                profile = profiles.setdefault(threading.get_ident(), cProfile.Profile())
            profile.enable()
            try:
                original(item)
            finally:
                profile.disable()

        futures_thread._WorkItem.run = profiled  # type: ignore[method-assign]
        main = cProfile.Profile()
        try:
            return main.runcall(fn)
        finally:
            futures_thread._WorkItem.run = original  # type: ignore[method-assign]
            stats = pstats.Stats(main)
            for profile in profiles.values():
                stats.add(profile)
            path = os.path.join(self.directory, f"{label}.prof")
            stats.dump_stats(path)
            print(f"  profile of {label}: {path} ({len(profiles)} pool threads)", flush=True)


class Bench:
    def __init__(self, args) -> None:
        self.args = args
        url = args.store
        if url.startswith("hbase://") and "pool_size=" not in url:
            url += ("&" if "?" in url else "?") + f"pool_size={2 * args.workers + 8}"
        self.store = open_store(url)
        tag = uuid.uuid4().hex[:8]
        # Before the client exists: every meta access of this process goes to the private one.
        self.meta_table = culvert_meta.META_TABLE = f"__culvert_meta_bench_{tag}"
        self.db = Client(self.store, workers=args.workers, close_store=False)
        self.foreign = f"bench_app_{tag}"  # the application's table
        self.name = f"bench_adopted_{tag}"  # its adopted schema name
        self.native = f"bench_native_{tag}"
        self.copy = f"bench_copy_{tag}"  # the scan-and-copy baseline's target
        self.adopted_applied = self.native_applied = False
        self.made: list[str] = []  # store tables culvert_py created for this run
        self.changed: dict[int, tuple[int, float]] = {}
        self.profiler = Profiler(args.profile)
        self.pool = ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix="bench")

    # -- the application's table --------------------------------------------------------

    def load_foreign(self) -> float:
        n, t0 = self.args.rows, time.perf_counter()
        self.store.create_table(self.foreign, ["info"], split_keys=split_keys(self.args.regions))
        raw = self.store.table(self.foreign)
        ts = now_ms() - HOUR_MS  # an hour old: older than any sync window

        def write(batch) -> int:
            return raw.put_many(((r["user_id"].encode(), java_cells(r)) for _, r in batch), ts)

        written = sum(self.pool.map(write, chunks(make_rows(n), 1000)))
        assert written == n, written
        return time.perf_counter() - t0

    def raw_scan(self) -> tuple[int, int]:
        """Baseline: every cell of every row, one scan per region, on the pool."""
        raw = self.store.table(self.foreign)

        def scan(region) -> tuple[int, int]:
            rows = cells = 0
            for _, row in raw.scan(start=region.start or None, stop=region.end or None):
                rows += 1
                cells += len(row)
            return rows, cells

        counts = list(self.pool.map(scan, self.store.regions(self.foreign)))
        return sum(r for r, _ in counts), sum(c for _, c in counts)

    def scan_and_copy(self) -> int:
        """Second baseline: the raw parallel scan, each region's rows put into a plain table
        in batches of 1,000 (what a build without any index logic would cost)."""
        raw, copy = self.store.table(self.foreign), self.store.table(self.copy)
        ts = now_ms()

        def scan(region) -> int:
            rows = raw.scan(start=region.start or None, stop=region.end or None)
            return sum(copy.put_many(batch, ts) for batch in chunks(rows, 1000))

        return sum(self.pool.map(scan, self.store.regions(self.foreign)))

    # -- 1. build vs raw scan -----------------------------------------------------------

    def build_vs_scan(self) -> dict:
        n, repeat = self.args.rows, self.args.repeat
        self.raw_scan()  # warm-up: block cache, connections
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            rows, cells = self.raw_scan()
            times.append(time.perf_counter() - t0)
            assert rows == n and cells == 5 * n, (rows, cells)
        scan_s = statistics.median(times)
        scan_cpu = self.cpu_of(self.raw_scan)
        self.store.create_table(self.copy, ["info"], split_keys=split_keys(self.args.regions))
        t0, c0 = time.perf_counter(), cpu_seconds()
        copied = self.scan_and_copy()
        copy_s, copy_cpu = time.perf_counter() - t0, cpu_seconds() - c0
        assert copied == n, copied
        self.store.delete_table(self.copy)

        t0 = time.perf_counter()
        applied = self.db.apply_schema(adopted_schema(self.name, self.foreign, BY_AGE))
        self.adopted_applied = True
        self.made += self.store_tables(self.name)
        apply_s = time.perf_counter() - t0
        assert applied["indexes"] == {f"{self.name}.by_age": "BUILDING"}, applied
        t0, c0 = time.perf_counter(), cpu_seconds()
        report = self.profiler.run(
            "build",
            lambda: ops.build_index(
                self.db, self.name, "by_age", workers=self.args.workers, grace_seconds=0
            ),
        )
        build_s, build_cpu = time.perf_counter() - t0, cpu_seconds() - c0
        assert report.rows_scanned == n and report.state_after == "ACTIVE", report
        assert not report.bad_cells, report.bad_cells
        return {
            "scan_s": scan_s,
            "scan_cpu": scan_cpu,
            "copy_s": copy_s,
            "copy_cpu": copy_cpu,
            "apply_s": apply_s,
            "build_s": build_s,
            "build_cpu": build_cpu,
        }

    def cpu_of(self, fn) -> float:
        """Client CPU seconds of one more run of ``fn`` (untimed otherwise)."""
        c0 = cpu_seconds()
        fn()
        return cpu_seconds() - c0

    def flush(self) -> None:
        if self.args.flush and self.args.store.startswith("hbase://"):
            seconds = flush_table(self.foreign)
            print(f"  flushed {self.foreign} to store files ({seconds:.1f} s)", flush=True)

    # -- 2. sync vs rebuild -------------------------------------------------------------

    def change_rows(self) -> int:
        """Rewrite age and balance of a fraction of the rows, as the application would."""
        n = self.args.rows
        k = max(1, round(n * self.args.changed))
        rnd = random.Random(2)
        picked = set(rnd.sample(range(n), k))
        self.changed = {}
        updates = []
        for i, row in make_rows(n):
            if i in picked:
                span = MAX_AGE - MIN_AGE + 1
                age = MIN_AGE + (row["age"] - MIN_AGE + rnd.randint(1, 40)) % span
                balance = round(rnd.uniform(-100.0, 10_000.0), 2)
                self.changed[i] = (age, balance)
                cells = {
                    b"info:age": struct.pack(">i", age),
                    b"info:bal": struct.pack(">d", balance),
                }
                updates.append((row["user_id"].encode(), cells))
        raw = self.store.table(self.foreign)
        ts = now_ms()
        sum(self.pool.map(lambda batch: raw.put_many(batch, ts), chunks(updates, 1000)))
        return k

    def sync_vs_rebuild(self) -> dict:
        self.flush()  # the adopted table at rest: the build's version cells on disk too
        k = self.change_rows()
        t0, c0 = time.perf_counter(), cpu_seconds()
        report = self.profiler.run(
            "sync",
            lambda: ops.sync_index(
                self.db,
                self.name,
                margin_seconds=self.args.margin,
                workers=self.args.workers,
            ),
        )
        sync_s, sync_cpu = time.perf_counter() - t0, cpu_seconds() - c0
        if report.rows_examined > 2 * k:
            print(
                f"  warning: sync examined {report.rows_examined:,} rows for {k:,} changed: "
                "its window reached back to the initial load (raise --margin's distance)"
            )
        assert report.rows_examined >= k, report.summary()
        t0, c0 = time.perf_counter(), cpu_seconds()
        rebuilt = ops.rebuild_index(
            self.db, self.name, "by_age", workers=self.args.workers, grace_seconds=0
        )
        rebuild_s, rebuild_cpu = time.perf_counter() - t0, cpu_seconds() - c0
        assert rebuilt.rows_scanned == self.args.rows, rebuilt
        return {
            "changed": k,
            "sync_s": sync_s,
            "sync_cpu": sync_cpu,
            "sync_examined": report.rows_examined,
            "sync_rows_changed": report.rows_changed,
            "sync_entries": report.entries_changed,
            "rebuild_s": rebuild_s,
            "rebuild_cpu": rebuild_cpu,
        }

    # -- 3. query latency ---------------------------------------------------------------

    def prepare_queries(self) -> dict:
        t0 = time.perf_counter()
        self.db.apply_schema(adopted_schema(self.name, self.foreign, BY_AGE | BY_EMAIL))
        self.made += self.store_tables(self.name)
        report = ops.build_index(
            self.db, self.name, "by_email", workers=self.args.workers, grace_seconds=0
        )
        assert report.state_after == "ACTIVE", report
        email_build_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        self.db.apply_schema(native_schema(self.native))
        self.native_applied = True
        self.made += self.store_tables(self.native)
        native = self.db.table(self.native)
        loaded = native.put_many(
            (native_row(r) for _, r in make_rows(self.args.rows, self.changed)), bulk=True
        )
        native_load_s = time.perf_counter() - t0
        for name in (self.name, self.native):
            self.db.table(name).refresh_stats()
        return {"email_build_s": email_build_s, "native_load_s": native_load_s, "loaded": loaded}

    def queries(self) -> dict:
        n, q = self.args.rows, self.args.queries
        rnd = random.Random(3)
        point = [col("email") == f"user{rnd.randrange(n)}@example.org" for _ in range(q)]
        ranged = [col("age") == rnd.randint(MIN_AGE, MAX_AGE) for _ in range(q)]
        adopted, native = self.db.table(self.name), self.db.table(self.native)
        limit = self.args.range_limit or None
        kinds = {"point": (point, None), "range": (ranged, limit)}
        for where, lim in [(point[0], None), (ranged[0], limit)]:
            for t in (adopted, native):  # same plan shape on both: an index scan, not covered
                source = t.plan(where, limit=lim).source
                assert isinstance(source, IndexScan) and not source.covered, (t.name, source)

        def run(t, where, lim) -> tuple[float, list]:
            t0 = time.perf_counter()
            rows = list(t.query(where, limit=lim))
            return time.perf_counter() - t0, rows

        def key(r):
            return r["user_id"]

        for where, lim in [(w, lm) for ws, lm in kinds.values() for w in ws[:10]]:
            run(adopted, where, lim), run(native, where, lim)  # warm-up
        out: dict[str, dict] = {}
        for kind, (wheres, lim) in kinds.items():
            lat = {"adopted": [], "native": []}
            rows_seen = 0
            for j, where in enumerate(wheres):
                order = [("adopted", adopted), ("native", native)]
                if j % 2:
                    order.reverse()  # neither table always goes first
                got = {}
                for label, t in order:
                    seconds, rows = run(t, where, lim)
                    lat[label].append(seconds)
                    got[label] = rows
                if lim is None:
                    a, b = sorted(got["adopted"], key=key), sorted(got["native"], key=key)
                    assert a == b, f"{where}: adopted and native answers differ"
                else:
                    assert len(got["adopted"]) == len(got["native"]), where
                rows_seen += len(got["adopted"])
            out[kind] = {
                "rows": rows_seen / len(wheres),
                **{f"{label}_p50": quantile(xs, 0.5) for label, xs in lat.items()},
                **{f"{label}_p90": quantile(xs, 0.9) for label, xs in lat.items()},
            }
        if self.args.profile:
            self.profiler.run(
                "query_range_adopted", lambda: [run(adopted, w, limit) for w in ranged[:50]]
            )
            self.profiler.run(
                "query_range_native", lambda: [run(native, w, limit) for w in ranged[:50]]
            )
        return out

    def check_range_answers(self) -> int:
        """With a limit the two tables may return different rows of a range; compare a few
        whole ranges once, untimed."""
        adopted, native = self.db.table(self.name), self.db.table(self.native)
        checked = 0
        for age in (MIN_AGE, 42, MAX_AGE):
            where = col("age") == age
            a = sorted(adopted.query(where), key=lambda r: r["user_id"])
            b = sorted(native.query(where), key=lambda r: r["user_id"])
            assert a == b, f"age = {age}: adopted and native answers differ"
            checked += len(a)
        return checked

    def store_tables(self, name: str) -> list[str]:
        """The store tables culvert_py made for table ``name``: its index tables, and the
        primary table of a native one."""
        definition = self.db.table(name).definition
        tables = [i.hbase_table for i in definition.indexes.values()]
        return tables if definition.existing else [*tables, definition.hbase_table]

    def close(self) -> None:
        """Drop everything this run created, step by step: a failed step (another process
        wiped the dev HBase meanwhile, say) does not stop the others."""
        self.pool.shutdown(wait=True)
        steps = []
        if not self.args.keep:
            for name, applied in (
                (self.name, self.adopted_applied),
                (self.native, self.native_applied),
            ):
                if applied:
                    steps.append((f"drop {name}", lambda n=name: self.db.drop_table(n)))
            if self.adopted_applied:  # drop_table leaves the sync watermark behind
                steps.append(
                    ("sync watermark", lambda: self.db.meta.delete_doc(SYNC_DOC, self.name))
                )
            # Whatever drop_table could not reach (no-ops when already gone).
            steps += [(f"delete {t}", lambda t=t: self.store.delete_table(t)) for t in self.made]
            steps.append((f"delete {self.foreign}", lambda: self.store.delete_table(self.foreign)))
            steps.append((f"delete {self.copy}", lambda: self.store.delete_table(self.copy)))
            steps.append(
                (f"delete {self.meta_table}", lambda: self.store.delete_table(self.meta_table))
            )
        try:
            for label, step in steps:
                try:
                    step()
                except Exception as exc:  # clean up as much as possible
                    first = (str(exc).splitlines() or [repr(exc)])[0]
                    print(f"  cleanup: {label} failed: {first[:200]}")
        finally:
            self.db.close()
            self.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=os.environ.get("CULVERT_BENCH_STORE", DEFAULT_STORE))
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--regions", type=int, default=4, help="regions of the foreign table")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="raw scans timed (median)")
    parser.add_argument("--changed", type=float, default=0.01, help="fraction changed")
    parser.add_argument("--margin", type=float, default=60.0, help="sync margin, seconds")
    parser.add_argument("--queries", type=int, default=200, help="queries of each kind")
    parser.add_argument(
        "--range-limit", type=int, default=50, help="rows per range query (0: the whole range)"
    )
    parser.add_argument(
        "--flush",
        action="store_true",
        help="flush the foreign table after the load and after the build (HBase; needs java)",
    )
    parser.add_argument("--profile", metavar="DIR", help="cProfile each subject into DIR")
    parser.add_argument("--keep", action="store_true", help="keep the tables afterwards")
    args = parser.parse_args()

    bench = Bench(args)
    started = time.perf_counter()
    flushed = args.flush and args.store.startswith("hbase://")
    try:
        print(
            f"{args.rows:,} rows, {args.regions} regions, {args.workers} workers on "
            f"{bench.store.describe()}",
            flush=True,
        )
        load_s = bench.load_foreign()
        print(f"  foreign table loaded in {load_s:.1f} s", flush=True)
        bench.flush()  # an hour-old load is in store files
        build = bench.build_vs_scan()
        build_ratio, build_only, copy_ratio = print_build(args, build)
        sync = bench.sync_vs_rebuild()
        speedup = print_sync(args, sync, flushed)
        prep = bench.prepare_queries()
        print(
            f"  by_email built in {prep['email_build_s']:.1f} s; native table loaded in "
            f"{prep['native_load_s']:.1f} s",
            flush=True,
        )
        query = bench.queries()
        checked = bench.check_range_answers()
        ratios = print_queries(args, query, checked)
    finally:
        bench.close()
    total_s = time.perf_counter() - started
    worst = max(ratios.values())
    print(f"   total {total_s:.0f} s")
    print(
        f"RESULT build_vs_scan={build_ratio:.2f} build_only_vs_scan={build_only:.2f} "
        f"build_vs_copy={copy_ratio:.2f} copy_s={build['copy_s']:.2f} "
        f"sync_speedup={speedup:.1f} query_p50_ratio={worst:.2f} "
        f"point_p50_ratio={ratios['point']:.2f} range_p50_ratio={ratios['range']:.2f} "
        f"rows={args.rows} flushed={int(flushed)} scan_s={build['scan_s']:.2f} "
        f"build_s={build['build_s']:.2f} "
        f"apply_s={build['apply_s']:.2f} sync_s={sync['sync_s']:.2f} "
        f"rebuild_s={sync['rebuild_s']:.2f} "
        f"point_p50_ms={query['point']['adopted_p50'] * 1000:.2f} "
        f"range_p50_ms={query['range']['adopted_p50'] * 1000:.2f} total_s={total_s:.0f}"
    )


def print_build(args, build: dict) -> tuple[float, float, float]:
    """Section 1's table; returns (apply + build, build alone) over the raw scan, and the
    build alone over scan-and-copy."""
    subject_s = build["apply_s"] + build["build_s"]
    build_ratio = subject_s / build["scan_s"]
    build_only = build["build_s"] / build["scan_s"]
    copy_ratio = build["build_s"] / build["copy_s"]
    print()
    print(f"1. build over the foreign table ({args.rows:,} rows, index by_age)")
    print(f"   {'':<40}{'seconds':>9}{'rows/s':>11}{'client CPU s':>14}")
    for label, s, c in [
        ("raw parallel scan (baseline)", build["scan_s"], f"{build['scan_cpu']:.2f}"),
        ("scan-and-copy (second baseline)", build["copy_s"], f"{build['copy_cpu']:.2f}"),
        ("apply_schema + build_index", subject_s, ""),
        ("  of which build_index", build["build_s"], f"{build['build_cpu']:.2f}"),
    ]:
        print(f"   {label:<40}{s:>9.2f}{args.rows / s:>11,.0f}{c:>14}")
    print(f"   ratio {build_ratio:.2f}x (build only {build_only:.2f}x; target <= 1.3x)")
    print(f"   build only vs scan-and-copy {copy_ratio:.2f}x")
    print(flush=True)
    return build_ratio, build_only, copy_ratio


def print_sync(args, sync: dict, flushed: bool) -> float:
    """Section 2's table; returns rebuild over sync."""
    speedup = sync["rebuild_s"] / sync["sync_s"]
    print(
        f"2. {sync['changed']:,} rows ({args.changed:.1%}) changed behind culvert_py's back"
        + ("; table flushed first" if flushed else "")
    )
    print(f"   {'':<40}{'seconds':>9}{'client CPU s':>14}")
    print(
        f"   {'rebuild_index by_age (baseline)':<40}{sync['rebuild_s']:>9.2f}"
        f"{sync['rebuild_cpu']:>14.2f}"
    )
    print(
        f"   {'sync_index':<40}{sync['sync_s']:>9.2f}{sync['sync_cpu']:>14.2f}  "
        f"({sync['sync_examined']:,} rows examined, {sync['sync_rows_changed']:,} changed, "
        f"{sync['sync_entries']:,} entries)"
    )
    print(f"   speedup {speedup:.1f}x (target >= 10x)")
    print(flush=True)
    return speedup


def print_queries(args, query: dict, checked: int) -> dict[str, float]:
    """Section 3's table; returns the p50 ratio adopted/native per kind of query."""
    ratios = {k: v["adopted_p50"] / v["native_p50"] for k, v in query.items()}
    print()
    print(f"3. query latency, {args.queries} queries of each kind (ms; non-covered)")
    print(f"   {'':<30}{'rows':>7}{'adopted p50/p90':>18}{'native p50/p90':>18}{'p50 ratio':>11}")
    labels = {
        "point": "email = x (term index)",
        "range": f"age = a (range, limit {args.range_limit or 'none'})",
    }
    for kind, v in query.items():
        a = f"{v['adopted_p50'] * 1000:.2f}/{v['adopted_p90'] * 1000:.2f}"
        b = f"{v['native_p50'] * 1000:.2f}/{v['native_p90'] * 1000:.2f}"
        print(f"   {labels[kind]:<30}{v['rows']:>7.0f}{a:>18}{b:>18}{ratios[kind]:>10.2f}x")
    worst = max(ratios.values())
    print(f"   worst p50 ratio {worst:.2f}x (target <= 1.1x); {checked:,} range rows compared")
    return ratios


if __name__ == "__main__":
    main()
