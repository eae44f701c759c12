"""Plans rendered for reading: an indented ``explain`` tree, or plain dicts for JSON."""

from __future__ import annotations

from culvert_py.query.plan import Empty, FullScan, IndexScan, Intersect, Node, Plan, Source, Union


def explain_lines(plan: Plan, analyze: bool = False) -> list[str]:
    """The plan as an indented tree, one line per node."""
    lines: list[str] = []

    def est(node: Node) -> str:
        text = "est ?" if node.est_rows is None else f"est {node.est_rows:,.0f}"
        if analyze:
            text += (
                f" | actual {node.actual_rows:,} rows, {node.rpcs} rpcs, "
                f"{node.seconds * 1000:.1f} ms"
            )
        return text

    def add(depth: int, text: str) -> None:
        lines.append(("   " * (depth - 1) + "└─ " if depth else "") + text)

    def walk(source: Source, depth: int) -> None:
        match source:
            case IndexScan():
                idx = source.index
                mode = "covered, no primary fetch" if source.covered else "then fetch rows"
                buckets = sorted({b for r in source.ranges for b in r.buckets})
                add(
                    depth,
                    f"IndexScan {idx.hbase_table} [{idx.kind}] on {source.answers!s}"
                    f" ({mode}) — {len(source.ranges)} range(s) x {len(buckets)} bucket(s)"
                    f" in parallel; {est(source)}"
                    + (f", {source.entries_read:,} entries read" if analyze else ""),
                )
                for r in source.ranges[:4]:
                    add(
                        depth + 1,
                        f"keys [{r.start.hex() or '-'} .. {r.stop.hex() if r.stop else '-'})"
                        f" buckets {_span(r.buckets)}",
                    )
                if len(source.ranges) > 4:
                    add(depth + 1, f"... {len(source.ranges) - 4} more ranges")
            case Intersect():
                add(depth, f"Intersect (stream driver, probe keys kept in memory); {est(source)}")
                walk(source.driver, depth + 1)
                for p in source.probes:
                    walk(p, depth + 1)
            case FullScan():
                flt = source.filter.decode(errors="replace") if source.filter else "none"
                done = "complete" if source.filter_complete else "partial; rest checked here"
                add(
                    depth,
                    f"FullScan {plan.table.hbase_table} (every region in parallel); "
                    f"server filter: {flt} ({done}); {est(source)}",
                )
            case Union():
                add(
                    depth,
                    f"Union (OR expansion, a row is kept by its first matching branch); "
                    f"{est(source)}",
                )
                for branch in source.branches:
                    add(depth + 1, f"branch {branch.predicate!s}")
                    walk(branch.source, depth + 2)
            case Empty():
                add(depth, f"Empty: {source.reason}")

    head = f"Query {plan.table.name} where {plan.predicate!s}"
    if plan.order_by:
        head += f" order by {plan.order_by[0]}{' desc' if plan.order_by[1] else ''}"
    if plan.limit is not None:
        head += f" limit {plan.limit}"
    lines.append(f"{head}; {est(plan)}")
    depth = 1
    if plan.sort:
        add(depth, f"Sort by {plan.sort[0]}{' desc' if plan.sort[1] else ''} (client-side)")
        depth += 1
    add(depth, "Check every row against the whole predicate (residual + consistency)")
    walk(plan.source, depth + 1)
    lines += [f"note: {n}" for n in plan.notes]
    lines += _probe_lines(plan, analyze)
    return lines


def _probe_lines(plan: Plan, analyze: bool) -> list[str]:
    """One line per probe run while planning, and with ``analyze`` its share of the time."""
    lines = []
    seconds = 0.0
    for report in plan.probes:
        seconds += report.seconds
        parts = [f"{label} {_figure(e)}" for label, e in report.estimates]
        if report.rows is not None:
            parts.append(f"rows {_figure(report.rows)}")
        lines.append(
            f"probe: {'; '.join(parts)} — {report.scans} key-only scans, "
            f"{report.read:,} entries read, {report.seconds * 1000:.1f} ms"
        )
    if analyze and plan.probes:
        share = seconds / plan.seconds * 100 if plan.seconds else 0.0
        lines.append(
            f"probe cost: {seconds * 1000:.1f} ms planning vs {plan.seconds * 1000:.1f} ms "
            f"running ({share:.0f}%)"
        )
    return lines


def _figure(estimate) -> str:
    how = "cached" if estimate.cached else ("exact" if estimate.exact else "lower bound")
    return f"{estimate.entries:,.0f} entries ({how})"


def _span(buckets: list[int]) -> str:
    if len(buckets) > 2 and buckets == list(range(buckets[0], buckets[-1] + 1)):
        return f"{buckets[0]}-{buckets[-1]}"
    return ",".join(map(str, buckets))


def plan_structure(plan: Plan) -> dict:
    """The plan as plain dicts (for JSON output and tests)."""

    def node(source: Source) -> dict:
        base = {
            "est_rows": source.est_rows,
            "actual_rows": source.actual_rows,
            "rpcs": source.rpcs,
            "ms": round(source.seconds * 1000, 3),
        }
        match source:
            case IndexScan():
                return base | {
                    "type": "IndexScan",
                    "index": source.index.name,
                    "kind": source.index.kind,
                    "covered": source.covered,
                    "entries_read": source.entries_read,
                    "answers": str(source.answers),
                    "ranges": [
                        {
                            "start": r.start.hex(),
                            "stop": r.stop.hex() if r.stop else None,
                            "buckets": r.buckets,
                        }
                        for r in source.ranges
                    ],
                }
            case Intersect():
                return base | {
                    "type": "Intersect",
                    "driver": node(source.driver),
                    "probes": [node(p) for p in source.probes],
                }
            case FullScan():
                return base | {
                    "type": "FullScan",
                    "filter": source.filter.decode(errors="replace") if source.filter else None,
                    "filter_complete": source.filter_complete,
                }
            case Union():
                return base | {
                    "type": "Union",
                    "branches": [
                        {"predicate": str(b.predicate), "source": node(b.source)}
                        for b in source.branches
                    ],
                }
            case Empty():
                return base | {"type": "Empty", "reason": source.reason}
        raise AssertionError(source)

    return {
        "table": plan.table.name,
        "predicate": str(plan.predicate),
        "columns": list(plan.columns) if plan.columns else None,
        "order_by": plan.order_by,
        "sort": plan.sort,
        "limit": plan.limit,
        "est_rows": plan.est_rows,
        "actual_rows": plan.actual_rows,
        "ms": round(plan.seconds * 1000, 3),
        "source": node(plan.source),
        "notes": plan.notes,
        "probes": [
            {
                "estimates": {
                    label: {"entries": e.entries, "exact": e.exact, "cached": e.cached}
                    for label, e in report.estimates
                },
                "rows": None if report.rows is None else report.rows.entries,
                "scans": report.scans,
                "entries_read": report.read,
                "ms": round(report.seconds * 1000, 3),
            }
            for report in plan.probes
        ],
    }


__all__ = ["explain_lines", "plan_structure"]
