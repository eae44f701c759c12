"""Query speed: index plans against their baselines, measured in the same run.

Loads N rows (default 1,000,000) of 20 columns into the dev HBase, with five indexes:
``tag`` (term; 10,000 values, so one value is 0.01% of the rows), ``r`` (range; uniform
0-99,999, so a 1,000-wide range is 1%), ``a`` and ``b`` (term; 20 values each, 5% each,
independent), and ``uid`` (term, value-salted, unique). Then, each against its baseline:

- equality (0.01%) vs a full scan with the predicate pushed to the region servers;
- range (1%) vs the same full scan;
- ``a = x AND b = y`` (0.25%): the planner's intersection vs the best single index + residual;
- the 1% range with 8 parallel bucket scans vs the same plan with 1 worker;
- the 1% range (10k rows at 1M) vs a raw happybase scan of 10k contiguous primary rows;
- p50/p99 of a single-row lookup vs a hand-written happybase lookup (index scan + get);
- client RSS growth while iterating a query over every row (streaming, bounded memory).

``--scaling`` loads in stages (10k, 100k, 1M rows) and times equality and range against a
full scan at each size, drawing docs/query-scaling.png (needs matplotlib: pip install
-e '.[bench]'). Prints a table and a last line ``RESULT …``.

    python bench/query.py [--rows 1000000] [--scaling] [--hbase 127.0.0.1:9090]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import time
import uuid

import happybase

from culvert_py.client import Client
from culvert_py.predicate import col
from culvert_py.query.plan import NO_INDEX, Intersect
from culvert_py.schema import parse_schema
from culvert_py.store import open_store

FILLER = [f"f{i:02d}" for i in range(14)]
TAGS = 10_000


def schema(name: str):
    columns = {"id": "str", "uid": "int", "tag": "int", "r": "int", "a": "int", "b": "int"}
    columns |= {c: "str" for c in FILLER}
    return parse_schema(
        {
            "tables": {
                name: {
                    "row_key": ["id"],
                    "salt_buckets": 8,
                    "columns": columns,
                    "indexes": {
                        "by_tag": {"kind": "term", "columns": ["tag"]},
                        "by_r": {"kind": "range", "columns": ["r"]},
                        "by_a": {"kind": "term", "columns": ["a"]},
                        "by_b": {"kind": "term", "columns": ["b"]},
                        "by_uid": {"kind": "term", "columns": ["uid"], "salt": "value"},
                    },
                }
            }
        }
    )


def rows(start: int, stop: int):
    rnd = random.Random(start)
    for i in range(start, stop):
        yield {
            "id": f"{(i * 2654435761) & 0xFFFFFFFF:08x}{i:08d}",
            "uid": i,
            "tag": rnd.randrange(TAGS),
            "r": rnd.randrange(100_000),
            "a": rnd.randrange(20),
            "b": rnd.randrange(20),
            **{c: f"v{(i + k) % 9973:06d}" for k, c in enumerate(FILLER)},
        }


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    """Median seconds of ``repeat`` runs, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def count(result) -> int:
    return sum(1 for _ in result)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Bench:
    def __init__(self, host: str, port: int, workers: int) -> None:
        self.host, self.port = host, port
        self.url = f"hbase://{host}:{port}?pool_size={workers + 8}"
        self.db = Client(open_store(self.url), workers=workers)
        self.name = f"bench_q_{uuid.uuid4().hex[:8]}"
        self.db.apply_schema(schema(self.name))
        self.table = self.db.table(self.name)
        self.loaded = 0

    def load_to(self, n: int) -> float:
        t0 = time.perf_counter()
        self.table.put_many(rows(self.loaded, n), bulk=True)
        self.loaded = n
        seconds = time.perf_counter() - t0
        self.table.refresh_stats()
        return seconds

    def eq_vs_full(self) -> dict:
        t = self.table
        where = col("tag") == 4242
        idx_s, n = timed(lambda: count(t.query(where)), 5)
        full_s, m = timed(lambda: count(t.query(where, use_index=NO_INDEX)), 3)
        assert n == m, (n, m)
        return {"eq_rows": n, "eq_index_ms": idx_s * 1000, "eq_full_ms": full_s * 1000}

    def range_vs_full(self) -> dict:
        t = self.table
        where = col("r").between(50_000, 50_999)
        idx_s, n = timed(lambda: count(t.query(where)), 3)
        full_s, m = timed(lambda: count(t.query(where, use_index=NO_INDEX)), 3)
        assert n == m, (n, m)
        return {"range_rows": n, "range_index_ms": idx_s * 1000, "range_full_ms": full_s * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--hbase", default=os.environ.get("CULVERT_TEST_HBASE", "127.0.0.1:9090"))
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--scaling", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the table afterwards")
    args = parser.parse_args()
    host, port = args.hbase.rsplit(":", 1)
    bench = Bench(host, int(port), args.workers)
    t = bench.table
    out: dict[str, float] = {"rows": args.rows}
    try:
        if args.scaling:
            stages = [s for s in (10_000, 100_000, 1_000_000) if s < args.rows] + [args.rows]
            scaling = []
            for size in stages:
                load_s = bench.load_to(size)
                point = {"rows": size, "load_s": load_s}
                point |= bench.eq_vs_full() | bench.range_vs_full()
                scaling.append(point)
                print(
                    f"scaling {size:>9,}: eq {point['eq_index_ms']:.1f} ms vs full "
                    f"{point['eq_full_ms']:.0f} ms; range {point['range_index_ms']:.0f} ms vs "
                    f"full {point['range_full_ms']:.0f} ms",
                    flush=True,
                )
            draw_scaling(scaling)
            out["load_rows_s"] = round(args.rows / sum(p["load_s"] for p in scaling))
        else:
            out["load_rows_s"] = round(args.rows / bench.load_to(args.rows))

        eq = bench.eq_vs_full()
        rng = bench.range_vs_full()

        # AND of two 5% predicates: planner (intersection) vs best single index + residual.
        where = (col("a") == 3) & (col("b") == 7)
        plan = t.plan(where)
        and_s, n_and = timed(lambda: count(t.query(where)), 3)
        single_s, n_single = timed(lambda: count(t.query(where, use_index="by_a")), 3)
        assert n_and == n_single

        # Fan-out: the same 1% range plan with one worker.
        one = Client(open_store(bench.url), workers=1)
        one_table = one.table(bench.name)
        rwhere = col("r").between(50_000, 50_999)
        serial_s, n_serial = timed(lambda: count(one_table.query(rwhere)), 3)
        # The same with a covered plan: index scans only, so the fan-out itself is measured.
        covered_cols = ["id", "r"]
        covered_serial_s, _ = timed(lambda: count(one_table.query(rwhere, columns=covered_cols)), 3)
        one.close()

        # Raw happybase scan of as many contiguous primary rows as the range returned.
        conn = happybase.Connection(host, int(port), timeout=120_000)
        raw = conn.table(bench.name)
        raw_s, n_raw = timed(
            lambda: sum(
                1 for _ in raw.scan(row_start=b"8", limit=rng["range_rows"], batch_size=1000)
            ),
            3,
        )
        covered_s, _ = timed(lambda: count(t.query(rwhere, columns=["id", "r"])), 3)

        # Single-row lookups: culvert vs hand-written happybase (value-salted index: one
        # bucket, one prefix scan, one get).
        keys = t.writer.keys["by_uid"]
        index_table = conn.table(t.definition.indexes["by_uid"].hbase_table)
        rnd = random.Random(5)
        ours, hand = [], []
        for _ in range(300):
            uid = rnd.randrange(bench.loaded)
            t0 = time.perf_counter()
            got = list(t.query(col("uid") == uid))
            ours.append(time.perf_counter() - t0)
            assert len(got) == 1
            t0 = time.perf_counter()
            values = keys.encode_values((uid,))
            bucket = keys.bucket_of(values, b"")
            prefix = bytes([bucket]) + values
            pks = [k[len(prefix) :] for k, _ in index_table.scan(row_prefix=prefix)]
            found = raw.rows(pks)
            hand.append(time.perf_counter() - t0)
            assert len(found) == 1
        conn.close()

        # Memory: stream every row through an index plan.
        before = rss_mb()
        peak = before
        n_all = 0
        for _ in t.query(col("r") >= 0, use_index="by_r"):
            n_all += 1
            if n_all % 50_000 == 0:
                peak = max(peak, rss_mb())
        peak = max(peak, rss_mb())

        ms = lambda s: round(s * 1000, 1)  # noqa: E731
        q = lambda xs, p: sorted(xs)[min(len(xs) - 1, int(p * len(xs)))] * 1000  # noqa: E731
        out |= {
            "eq_rows": eq["eq_rows"],
            "eq_index_ms": round(eq["eq_index_ms"], 1),
            "eq_full_ms": round(eq["eq_full_ms"]),
            "eq_speedup": round(eq["eq_full_ms"] / eq["eq_index_ms"], 1),
            "range_rows": rng["range_rows"],
            "range_index_ms": round(rng["range_index_ms"]),
            "range_full_ms": round(rng["range_full_ms"]),
            "range_speedup": round(rng["range_full_ms"] / rng["range_index_ms"], 1),
            "and_plan": "intersect" if isinstance(plan.source, Intersect) else "single",
            "and_rows": n_and,
            "and_ms": ms(and_s),
            "and_single_index_ms": ms(single_s),
            "and_speedup": round(single_s / and_s, 2),
            "fanout_8_ms": round(rng["range_index_ms"]),
            "fanout_1_ms": ms(serial_s),
            "fanout_speedup": round(serial_s * 1000 / rng["range_index_ms"], 2),
            "covered_fanout_8_ms": ms(covered_s),
            "covered_fanout_1_ms": ms(covered_serial_s),
            "covered_fanout_speedup": round(covered_serial_s / covered_s, 2),
            "raw_scan_rows": n_raw,
            "raw_scan_ms": ms(raw_s),
            "range_vs_raw": round(rng["range_index_ms"] / (raw_s * 1000), 2),
            "covered_range_ms": ms(covered_s),
            "covered_vs_raw": round(covered_s / raw_s, 2),
            "lookup_p50_ms": round(q(ours, 0.5), 2),
            "lookup_p99_ms": round(q(ours, 0.99), 2),
            "hand_p50_ms": round(q(hand, 0.5), 2),
            "hand_p99_ms": round(q(hand, 0.99), 2),
            "stream_rows": n_all,
            "stream_rss_growth_mb": round(peak - before, 1),
        }
        assert n_serial == rng["range_rows"]
    finally:
        if not args.keep:
            bench.db.drop_table(bench.name)
        bench.db.close()

    print(f"{args.rows:,} rows x 20 columns, 5 indexes, {args.workers} workers")
    rows_out = [
        (
            "equality 0.01%",
            f"{out['eq_index_ms']} ms",
            f"full scan {out['eq_full_ms']} ms",
            f"{out['eq_speedup']}x faster (target >= 200x)",
        ),
        (
            "range 1%",
            f"{out['range_index_ms']} ms",
            f"full scan {out['range_full_ms']} ms",
            f"{out['range_speedup']}x faster (target >= 20x)",
        ),
        (
            "a AND b (0.25%)",
            f"{out['and_ms']} ms ({out['and_plan']})",
            f"one index + residual {out['and_single_index_ms']} ms",
            f"{out['and_speedup']}x (target >= 3x)",
        ),
        (
            "8-bucket fan-out",
            f"{out['fanout_8_ms']} ms",
            f"1 worker {out['fanout_1_ms']} ms",
            f"{out['fanout_speedup']}x (target >= 1.5x)",
        ),
        (
            "  covered plan",
            f"{out['covered_fanout_8_ms']} ms",
            f"1 worker {out['covered_fanout_1_ms']} ms",
            f"{out['covered_fanout_speedup']}x",
        ),
        (
            f"range {out['range_rows']} rows",
            f"{out['range_index_ms']} ms",
            f"raw scan {out['raw_scan_ms']} ms",
            f"{out['range_vs_raw']}x the time (target <= 1.5x); covered {out['covered_vs_raw']}x",
        ),
        (
            "single-row lookup",
            f"p50 {out['lookup_p50_ms']} / p99 {out['lookup_p99_ms']} ms",
            f"hand-written p50 {out['hand_p50_ms']} / p99 {out['hand_p99_ms']} ms",
            "",
        ),
        (
            f"stream {out['stream_rows']:,} rows",
            f"RSS +{out['stream_rss_growth_mb']} MB",
            "",
            "target < 100 MB",
        ),
    ]
    for r in rows_out:
        print(f"{r[0]:<20}{r[1]:<28}{r[2]:<38}{r[3]}")
    print("RESULT " + " ".join(f"{k}={v}" for k, v in out.items()))


def draw_scaling(points: list[dict]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: pip install -e '.[bench]' to draw docs/query-scaling.png")
        return
    sizes = [p["rows"] for p in points]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(
        sizes,
        [p["eq_full_ms"] for p in points],
        "o-",
        color="tab:red",
        label="full scan + server filter (equality)",
    )
    ax.plot(
        sizes,
        [p["range_full_ms"] for p in points],
        "s--",
        color="tab:orange",
        label="full scan + server filter (1% range)",
    )
    ax.plot(
        sizes,
        [p["eq_index_ms"] for p in points],
        "o-",
        color="tab:blue",
        label="index: equality (0.01%)",
    )
    ax.plot(
        sizes,
        [p["range_index_ms"] for p in points],
        "s--",
        color="tab:green",
        label="index: range (1%)",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rows in table")
    ax.set_ylabel("query time (ms, median)")
    ax.set_title("culvert_py on the dev HBase: index vs full scan as the table grows")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    os.makedirs("docs", exist_ok=True)
    fig.tight_layout()
    fig.savefig("docs/query-scaling.png", dpi=120)
    print("wrote docs/query-scaling.png")


if __name__ == "__main__":
    main()
