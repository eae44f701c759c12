"""Cursors of query results: a position in a plan's row stream, as an opaque token.

Every row leaves the executor with the position it was read at (the index key after the
salt, or the primary key, plus the range/branch number). A cursor is that position plus a
fingerprint of the query, so ``cursor=`` resumes right after the last row returned.
"""

from __future__ import annotations

import base64
import json

from culvert_py.errors import ArgumentError
from culvert_py.layout import MAX_KEY_BYTES
from culvert_py.query.plan import FullScan, IndexScan, Intersect, Node, Plan, Union


def encode_cursor(plan: Plan, position: object) -> str:
    """The token of ``position`` in the rows of ``plan``.

    :param plan: the plan the position was produced by
    :param position: a JSON-able position from the executor
    :return: an URL-safe string for :func:`decode_cursor`
    """
    doc = {"q": plan.fingerprint(), "p": position}
    return base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()


def decode_cursor(plan: Plan, cursor: str | None) -> object:
    """The position inside ``cursor``, checked against the shape ``plan`` gives positions.

    A position must be one this plan's executor path could have produced: ``[range, hex
    key]`` inside that key range for an index scan (the driver of an intersection),
    ``["f", hex key]`` for a full scan, ``[branch, inner position]`` for a union and
    ``["s", rows already returned]`` for a client-side sort. There is no checksum: a cursor
    grants nothing, and a position that passes these checks only moves where a scan of
    this same query resumes; every row is still checked against the predicate.

    :param plan: the plan the cursor is used with
    :param cursor: ``QueryResult.cursor`` of an earlier page of the same query, or ``None``
    :return: the position, or ``None`` for no cursor
    :raises ArgumentError: for a cursor that is not a string, does not decode, belongs to a
        different query or plan, or holds a position this plan cannot have produced
    """
    if cursor is None:
        return None
    name = plan.table.name
    if not isinstance(cursor, str):
        raise ArgumentError(
            f"{name}: cursor={cursor!r:.60}: expected the string of an earlier result's "
            ".cursor, or None"
        )
    try:
        doc = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except ValueError:  # binascii.Error, UnicodeError and JSONDecodeError are ValueErrors
        doc = None
    if not isinstance(doc, dict) or set(doc) != {"q", "p"}:
        raise ArgumentError(
            f"{name}: malformed cursor {cursor[:40]!r}: pass an earlier result's .cursor as is"
        )
    if doc["q"] != plan.fingerprint():
        raise ArgumentError(
            f"{name}: the cursor belongs to a different query (or plan); rerun without it"
        )
    position = doc["p"]
    expected = _position_problem(plan, position)
    if expected is not None:
        raise ArgumentError(
            f"{name}: cursor position {json.dumps(position)[:60]} does not fit this query's "
            f"plan (expected {expected}); pass an earlier result's .cursor as is"
        )
    return position


def _position_problem(plan: Plan, position: object) -> str | None:
    """What a position for ``plan`` must look like, or ``None`` when ``position`` is one."""
    if plan.sort is not None:
        ok = (
            isinstance(position, list)
            and len(position) == 2
            and position[0] == "s"
            and _is_count(position[1])
        )
        return None if ok else '["s", rows returned >= 0]'
    return _source_position_problem(plan.source, position)


def _source_position_problem(source: Node, position: object) -> str | None:
    pair = isinstance(position, list) and len(position) == 2
    match source:
        case FullScan():
            ok = pair and position[0] == "f" and _hex_key(position[1]) is not None
            return None if ok else '["f", hex row key]'
        case IndexScan() | Intersect():
            scan = source.driver if isinstance(source, Intersect) else source
            expected = f"[range number below {len(scan.ranges)}, hex index key in that range]"
            if not pair or not _is_count(position[0]) or position[0] >= len(scan.ranges):
                return expected
            key = _hex_key(position[1])
            rng = scan.ranges[position[0]]
            if key is None or key < rng.start or (rng.stop is not None and key >= rng.stop):
                return expected
            return None
        case Union(branches=branches):
            if not pair or not _is_count(position[0]) or position[0] >= len(branches):
                return f"[branch number below {len(branches)}, position in that branch]"
            inner = _source_position_problem(branches[position[0]].source, position[1])
            return None if inner is None else f"[{position[0]}, {inner}]"
    return "no position: this plan returns no rows"


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _hex_key(value: object) -> bytes | None:
    """The key a position's lower-case hex string stands for, or ``None`` if it is not one."""
    if not isinstance(value, str) or not 0 < len(value) <= 2 * MAX_KEY_BYTES:
        return None
    if len(value) % 2 or set(value) - set("0123456789abcdef"):
        return None
    return bytes.fromhex(value)


__all__ = ["decode_cursor", "encode_cursor"]
