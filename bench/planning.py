"""Planning time of long IN lists, against planning one equality in the same run.

A schema with a term index (``tag``) and a range index (``r``), planned in memory (the
planner needs no store). Each IN list of N values on ``tag`` is planned from its text form
(the CLI's path: parse, bind, normalise, plan) and from a predicate built with ``col``; the
baseline is ``tag = 1``. With ``--stats`` (the default) the planner estimates from synthetic
statistics (1M entries, 100 MCVs, a 100-bucket histogram), so every range is estimated.
Figures are the best of ``--repeat`` runs. Prints a table and a last line ``RESULT …``.

    python bench/planning.py [--sizes 100,1000,10000] [--repeat 5] [--no-stats]
"""

from __future__ import annotations

import argparse
import time

from culvert_py.encoding import encode_value
from culvert_py.predicate import col
from culvert_py.query.plan import IndexScan
from culvert_py.query.planner import Planner
from culvert_py.schema import parse_schema
from culvert_py.stats import IndexStats, TableStats

ROWS = 1_000_000


def table():
    schema = parse_schema(
        {
            "tables": {
                "events": {
                    "row_key": ["id"],
                    "salt_buckets": 8,
                    "columns": {"id": "str", "tag": "int", "r": "int", "note": "str"},
                    "indexes": {
                        "by_tag": {"kind": "term", "columns": ["tag"]},
                        "by_r": {"kind": "range", "columns": ["r"]},
                    },
                }
            }
        }
    )
    return schema.tables["events"]


def synthetic_stats() -> TableStats:
    """Statistics of a table where ``tag`` is nearly unique and ``r`` uniform (so an IN list
    of 10,000 tags stays an index plan)."""

    def index(name: str, ndv: int) -> IndexStats:
        mcv = tuple((encode_value(v, "int"), ROWS // ndv * 2) for v in range(100))
        histogram = tuple(encode_value(v * ndv // 100, "int") for v in range(101))
        return IndexStats(name, ROWS, (ndv,), 0, mcv, histogram, 0)

    indexes = {"by_tag": index("by_tag", ROWS // 2), "by_r": index("by_r", 100_000)}
    return TableStats("events", ROWS, indexes, 0)


def best_of(repeat: int, run) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="IN-list lengths")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (best kept)")
    parser.add_argument("--no-stats", action="store_true", help="plan without statistics")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    definition = table()
    states = {name: "ACTIVE" for name in definition.indexes}
    planner = Planner(definition, states, None if args.no_stats else synthetic_stats(), True)
    planner.plan("tag = 1")  # builds the parser once, as a long-lived client has

    baseline = best_of(args.repeat, lambda: planner.plan("tag = 1"))
    rows = []
    for n in sizes:
        values = list(range(0, 7 * n, 7))
        text = f"tag IN ({', '.join(map(str, values))})"
        built = col("tag").isin(values)
        plan = planner.plan(text)
        assert isinstance(plan.source, IndexScan) and len(plan.source.ranges) == n
        from_text = best_of(args.repeat, lambda t=text: planner.plan(t))
        from_expr = best_of(args.repeat, lambda b=built: planner.plan(b))
        rows.append((n, from_text, from_expr))

    print(f"planning IN lists ({'no ' if args.no_stats else ''}statistics), best of {args.repeat}")
    print(f"{'values':>8} {'text ms':>10} {'expr ms':>10} {'µs/value':>9} {'x baseline':>11}")
    print(f"{'1 (=)':>8} {baseline * 1000:>10.3f} {'':>10} {'':>9} {1:>11.0f}")
    for n, from_text, from_expr in rows:
        print(
            f"{n:>8,} {from_text * 1000:>10.1f} {from_expr * 1000:>10.1f} "
            f"{from_text / n * 1e6:>9.1f} {from_text / baseline:>11.0f}"
        )
    largest = rows[-1]
    growth = (rows[-1][1] / rows[-1][0]) / (rows[0][1] / rows[0][0]) if len(rows) > 1 else 1.0
    print(
        f"RESULT baseline_ms={baseline * 1000:.3f} "
        + " ".join(f"in{n}_text_ms={t * 1000:.1f} in{n}_expr_ms={e * 1000:.1f}" for n, t, e in rows)
        + f" largest_text_ms={largest[1] * 1000:.1f}"
        + f" per_value_growth={growth:.2f}"
    )


if __name__ == "__main__":
    main()
