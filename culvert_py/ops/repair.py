"""Repairs of confirmed index problems, written so that no concurrent write is lost.

An orphan not newer than its row is deleted at its own timestamp. Every later writer of the
row writes above the row's version, so no legitimate put is masked. Every other repair must
write above cells that may be newer than the row: a missing entry's delete marker, a bad
covered cell, an in-flight entry. It runs the write protocol for that one row: put the entry
unverified at a fresh ``T``, **touch** the row (check-and-mutate its version cell to a new
version at ``T``, data untouched), then mark the entry verified or delete it at ``T``. A
writer that read the old version loses its version check and retries above ``T``, so nothing
it writes can be masked by the repair, and nothing the repair writes can outlive a newer
write. On a store without check-and-mutate, the touch is a plain write, which is safe only
when no writer touches the same rows (the store's own guarantee in that case).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from culvert_py.clock import now_ms
from culvert_py.expiry import written_at
from culvert_py.layout import (
    DELETED,
    INDEX_FAMILY,
    LIVE,
    STATE_COLUMN,
    UNVERIFIED,
    VERIFIED,
    new_version,
)
from culvert_py.ops.common import IndexTarget, _entry_mutation
from culvert_py.store.base import RowMutation

log = logging.getLogger(__name__)

#: Deletes of whole entries, by the timestamp to delete them at.
PlainDeletes = dict[int, list[bytes]]


@dataclass
class _Fix:
    """One confirmed problem and what the touch-protocol repair writes for it.

    :ivar kind: the problem, as a :class:`~culvert_py.ops.VerifyReport` counter names it
    :ivar pk: the row touched
    :ivar version: its version cell as read (the touch is conditional on it)
    :ivar live: whether the row is live (the touch keeps it so)
    :ivar seen_ts: the newest timestamp read; the repair writes above it
    :ivar unverified: entry writes before the touch (step 2 of the write protocol)
    :ivar final: entry writes after it (step 4)
    """

    kind: str
    pk: bytes
    version: bytes | None
    live: bool
    seen_ts: int
    unverified: list[RowMutation]
    final: list[RowMutation]


def _missing_fix(pk: bytes, version: bytes | None, seen_ts: int, key: bytes, covered: dict) -> _Fix:
    """The repair of an entry a live row lacks: write it, touch the row, mark it verified."""
    return _Fix(
        "missing",
        pk,
        version,
        True,
        seen_ts,
        [_entry_mutation(key, covered, UNVERIFIED)],
        [RowMutation(key, {STATE_COLUMN: VERIFIED})],
    )


def _entry_fix(
    target: IndexTarget,
    kind: str,
    key: bytes,
    pk: bytes | None,
    entry: dict,
    row_cells: dict,
    plain_deletes: PlainDeletes,
) -> _Fix | None:
    """The repair of a bad entry: a plain delete (added to ``plain_deletes``), or a touch.

    :param kind: ``orphan``, ``unverified_orphan`` or ``wrong_covered``
    :param pk: the entry's primary key, ``None`` when its key does not decode
    :param entry: the entry's cells, with timestamps
    :param row_cells: every cell of its row, with timestamps
    :return: the touch-protocol fix, or ``None`` for a plain delete
    """
    entry_ts = max(t for _, t in entry.values())
    if pk is None:
        plain_deletes.setdefault(entry_ts, []).append(key)
        return None
    row, ts, version = target.row_state(pk, row_cells)
    if kind != "wrong_covered" and ts is not None and ts >= entry_ts:
        # Every later writer of the row writes above its version, so a delete at the
        # entry's own timestamp cannot mask anything one of them writes.
        plain_deletes.setdefault(entry_ts, []).append(key)
        return None
    seen = max([entry_ts, *(t for _, t in row_cells.values())])
    # ``row_cells`` is the whole row, so a row never written through culvert_py (no
    # version cell) decodes as live and its touch does not turn it into a tombstone.
    live = row is not None
    if kind != "wrong_covered":  # an orphan of either state
        family = INDEX_FAMILY.encode() + b":"
        return _Fix(kind, pk, version, live, seen, [], [RowMutation(key, {}, [family])])
    covered = target.entries(row, pk)[key]
    return _Fix(
        kind,
        pk,
        version,
        live,
        seen,
        [_entry_mutation(key, covered, UNVERIFIED)],
        [RowMutation(key, {STATE_COLUMN: VERIFIED})],
    )


def _delete_plain(target: IndexTarget, plain_deletes: PlainDeletes) -> int:
    """Delete entries at their own timestamps; returns how many."""
    for ts, keys in plain_deletes.items():
        target.entries_table.delete_many(keys, ts)
    return sum(len(keys) for keys in plain_deletes.values())


def _touch_repair(target: IndexTarget, fixes: list[_Fix]) -> int:
    """Repair through the write protocol: entry unverified, touch the row, finish.

    A row whose version changed since it was read is left to its writer.

    :return: how many of ``fixes`` were made
    """
    ts = max(now_ms(), max(f.seen_ts for f in fixes) + 1)
    step2 = [m for f in fixes for m in f.unverified]
    if step2:
        target.entries_table.mutate_many(step2, ts)
    by_row: dict[bytes, list[_Fix]] = {}
    for f in fixes:
        by_row.setdefault(f.pk, []).append(f)
    won: list[_Fix] = []
    for pk, row_fixes in by_row.items():
        f = row_fixes[0]
        # The touch keeps the time of the row's last write: a repair must not extend a ttl.
        written = written_at(f.version) or ts
        touch = RowMutation(pk, {target.vcol: new_version(written, LIVE if f.live else DELETED)})
        if not target.conditional:
            target.primary.mutate_many([touch], ts)
            won += row_fixes
        elif target.primary.check_and_mutate(pk, target.vcol, f.version, touch, ts):
            won += row_fixes
        else:
            log.debug("%s: row %r changed while repairing; left to its writer", target.path, pk)
    step4 = [m for f in won for m in f.final]
    if step4:
        target.entries_table.mutate_many(step4, ts)
    return len(won)
