"""Brute-force answers to index lookups, computed from the primary rows alone."""

from __future__ import annotations

from culvert_py.predicate import matches, parse
from culvert_py.text import tokenize


def rows_matching_index(table, index_name: str, rows: list[dict], values: tuple) -> dict:
    """``{id: row}`` of the rows an exact index lookup of ``values`` must return."""
    definition = table.definition
    index = definition.indexes[index_name]
    where = parse(index.where, dict(definition.columns)) if index.where else None
    out = {}
    for row in rows:
        if where is not None and not matches(where, row):
            continue
        if index.kind == "text":
            text = row.get(index.columns[0])
            hit = text is not None and values[0] in tokenize(text)
        else:
            hit = tuple(row.get(c) for c in index.columns[: len(values)]) == tuple(values)
        if hit:
            out[row["id"]] = row
    return out


def probe_values(table, index_name: str, history: list[dict]) -> set[tuple]:
    """Every value tuple (and leftmost prefix) any row ever had for the index."""
    index = table.definition.indexes[index_name]
    probes: set[tuple] = set()
    for row in history:
        if index.kind == "text":
            text = row.get(index.columns[0])
            probes |= {(t,) for t in tokenize(text)} if text else set()
        else:
            full = tuple(row.get(c) for c in index.columns)
            probes |= {full[:n] for n in range(1, len(full) + 1)}
    return probes


def assert_indexes_exact(table, history: list[dict]) -> int:
    """Check every index of ``table`` against a brute-force scan of the primary rows.

    For every value any row ever had (so stale entries of old values are probed too), the
    index lookup must return exactly the rows whose current values match — no stale row,
    no missing row — and a covered lookup must return the same rows with the same covered
    values. Returns the number of lookups checked.
    """
    definition = table.definition
    rows = list(table.scan_rows())
    checked = 0
    for name, index in definition.indexes.items():
        covered_cols = set(definition.row_key) | set(index.include)
        if index.kind != "text":
            covered_cols |= set(index.columns)
        for values in probe_values(table, name, history):
            expected = rows_matching_index(table, name, rows, values)
            got = {r["id"]: r for r in table.lookup(name, *values)}
            assert got == expected, f"{name} {values!r}: index disagrees with the primary rows"
            covered = {r["id"]: r for r in table.lookup(name, *values, covered=True)}
            want = {
                k: {c: v for c, v in r.items() if c in covered_cols} for k, r in expected.items()
            }
            assert covered == want, f"{name} {values!r}: covered lookup disagrees"
            checked += 1
    return checked


def aggregate_oracle(definition, rows: list[dict], kind: str, column, where, limit=None):
    """The answer an aggregate must give, from the primary rows alone: a count,
    ``{value: count}``, the smallest/largest non-NULL value, or the sorted distinct values
    (NULL first). Plain Python over the rows; the values carry no NaN (see the callers)."""
    predicate = parse(where, dict(definition.columns)) if where else None
    kept = [r for r in rows if predicate is None or matches(predicate, r)]
    values = [r.get(column) for r in kept] if column else []
    if kind == "count":
        if column is None:
            return len(kept)
        groups: dict = {}
        for value in values:
            groups[value] = groups.get(value, 0) + 1
        return groups
    present = [v for v in values if v is not None]
    if kind == "min":
        return min(present, default=None)
    if kind == "max":
        return max(present, default=None)
    ordered = sorted(set(present))
    out = ([None] if len(present) < len(values) else []) + ordered
    return out if limit is None else out[:limit]
