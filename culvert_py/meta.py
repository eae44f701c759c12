"""The meta table: applied schema, index states, job documents; shared by all clients.

Every client reads the schema from here rather than from a local file, so all writers
maintain the same indexes. A generation counter changes with every schema or state change;
writers check it once per batch (one small read) and reload when it moved, so an index added
by another client is maintained from that client's next batch on.

Index states: ``BUILDING`` (writers maintain it, queries do not use it), ``ACTIVE`` (both),
``DISABLED`` (neither; it must be rebuilt before use).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable

from culvert_py.clock import now_ms
from culvert_py.errors import SchemaError, StoreError
from culvert_py.schema import Schema, parse_schema, schema_to_json
from culvert_py.store.base import CAP_CHECK_AND_MUTATE, RowMutation, Store

META_TABLE = "__culvert_meta"
META_FAMILY = "m"

BUILDING = "BUILDING"
ACTIVE = "ACTIVE"
DISABLED = "DISABLED"
INDEX_STATES = (BUILDING, ACTIVE, DISABLED)

_SCHEMA_ROW = b"schema"
_JSON = b"m:json"
_GEN = b"m:gen"
# A random tag in every conditional write, so a retried one whose reply was lost can tell
# its own applied write from an identical one by another client in the same millisecond.
_TAG = b"m:tag"
_STATE = b"m:state"


class SchemaConflict(SchemaError):
    """Another client changed the applied schema between our read and our write."""


#: How often a schema change is re-planned on top of a concurrent one before giving up.
SCHEMA_RETRIES = 10


def _stats_row(table: str) -> bytes:
    return b"stats\x00" + table.encode()


def _checkpoint_row(name: str) -> bytes:
    return b"checkpoint\x00" + name.encode()


_INDEX_PREFIX = b"index\x00"


def _index_row(table: str, index: str) -> bytes:
    return _INDEX_PREFIX + table.encode() + b"\x00" + index.encode()


#: Row-key kinds the meta table uses itself; documents cannot take these kinds.
_RESERVED_KINDS = ("schema", "index", "stats", "checkpoint")


def _doc_row(kind: str, name: str) -> bytes:
    if kind in _RESERVED_KINDS or not kind or "\x00" in kind:
        raise ValueError(f"meta document kind {kind!r}: reserved, empty or containing NUL")
    return kind.encode() + b"\x00" + name.encode()


class Meta:
    """Reads and writes the meta table of a store.

    :param store: the store; the meta table is created on first write
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._table = store.table(META_TABLE)
        self._checkpoint_ts = 0
        self._exists = False  # seen to exist (see exists)
        self._ts_lock = threading.Lock()

    def ensure(self) -> None:
        """Create the meta table if it does not exist."""
        if self.exists():
            return
        try:
            self.store.create_table(META_TABLE, [META_FAMILY])
        except StoreError:
            if not self.store.table_exists(META_TABLE):  # lost a creation race: fine
                raise
        self._exists = True

    def exists(self) -> bool:
        """Whether a schema was ever applied to this store.

        Once seen, the meta table is taken to stay: asking HBase costs a table listing (tens
        of milliseconds), and a build saves a checkpoint per batch. A meta table deleted
        behind a client's back then fails its next read or write loudly, instead of
        reading as "no schema".
        """
        if not self._exists:
            self._exists = self.store.table_exists(META_TABLE)
        return self._exists

    def generation(self) -> int:
        """The current schema generation (0 before any schema was applied)."""
        if not self.exists():
            return 0
        row = self._table.get_many([_SCHEMA_ROW], columns=[_GEN]).get(_SCHEMA_ROW, {})
        return int(row.get(_GEN, b"0"))

    def load(self) -> tuple[int, Schema | None, dict[tuple[str, str], str]]:
        """Read the generation, the applied schema and every index state in one pass.

        :return: ``(generation, schema or None, {(table, index): state})``
        """
        if not self.exists():
            return 0, None, {}
        # Two small reads, not a scan of the whole table: statistics, build plans and
        # checkpoints share it and can be many.
        head = self._table.get_many([_SCHEMA_ROW]).get(_SCHEMA_ROW, {})
        rows = dict(self._table.scan(prefix=_INDEX_PREFIX, columns=[_STATE]))
        schema = None
        if _JSON in head:
            data = json.loads(head[_JSON])
            # Dropping the last table leaves a valid, empty applied schema.
            schema = (
                _parse_applied(data)
                if data.get("tables")
                else Schema({})
            )
        states = {}
        for key, cells in rows.items():
            if _STATE in cells:
                _, table, index = key.split(b"\x00")
                states[(table.decode(), index.decode())] = cells[_STATE].decode()
        return int(head.get(_GEN, b"0")), schema, states

    def save(self, expected_generation: int, schema: Schema, states: dict) -> int:
        """Write ``schema`` and index ``states`` and bump the generation.

        The schema write is conditional on the generation still being
        ``expected_generation``, so two concurrent ``apply`` runs cannot both win.

        :return: the new generation
        :raises SchemaError: when another client changed the schema in between
        """
        self.ensure()
        ts = now_ms()
        if states:
            self._table.put_many(
                ((_index_row(t, i), {_STATE: s.encode()}) for (t, i), s in states.items()), ts
            )
        new = expected_generation + 1
        mutation = RowMutation(
            _SCHEMA_ROW,
            {_JSON: schema_to_json(schema).encode(), _GEN: str(new).encode(), _TAG: _tag()},
        )
        if CAP_CHECK_AND_MUTATE in self.store.capabilities:
            expected = str(expected_generation).encode() if expected_generation else None
            ok = self._table.check_and_mutate(_SCHEMA_ROW, _GEN, expected, mutation, ts)
            if not ok and not self._holds(_SCHEMA_ROW, mutation, ts):
                raise SchemaConflict(
                    "the applied schema changed while applying; re-run to apply on top of it"
                )
        else:
            self._table.mutate_many([mutation], ts)
        return new

    def update(
        self,
        change: Callable[[Schema | None, dict], tuple[Schema, dict]],
        what: str = "the change",
    ) -> int:
        """Apply ``change`` to the applied schema, re-planning it on top of concurrent changes.

        The one retry loop of every schema change: read, let ``change`` compute the new
        schema and states from what it read, write conditionally on the generation read;
        when another client won in between, read again and call ``change`` again.

        :param change: ``change(applied schema or None, {(table, index): state})`` returns
            ``(new schema, {(table, index): new state})``; it may raise to abort
        :param what: names the change in the error when it keeps losing
        :return: the new generation
        :raises SchemaError: when the schema kept changing for :data:`SCHEMA_RETRIES` tries
        """
        for _attempt in range(SCHEMA_RETRIES):
            generation, schema, states = self.load()
            new_schema, new_states = change(schema, states)
            try:
                return self.save(generation, new_schema, new_states)
            except SchemaConflict:
                continue  # another client changed it meanwhile: plan again on top
        raise SchemaError(
            f"{what}: the applied schema kept changing; gave up after {SCHEMA_RETRIES} tries"
        )

    def replace(self, expected_generation: int, schema: Schema) -> int:
        """Store ``schema`` as the whole applied schema (after a drop); returns the generation."""
        return self.save(expected_generation, schema, {})

    def save_stats(self, table: str, document: str) -> None:
        """Store the statistics document (JSON text) of ``table``; the newest write wins."""
        self.ensure()
        self._table.put_many([(_stats_row(table), {_JSON: document.encode()})], now_ms())

    def load_stats(self, table: str) -> str | None:
        """The statistics document of ``table``, or ``None`` when never collected."""
        if not self.exists():
            return None
        row = self._table.get_many([_stats_row(table)], columns=[_JSON]).get(_stats_row(table))
        return row[_JSON].decode() if row else None

    def forget_table(self, table: str, indexes: list[str]) -> None:
        """Remove what the meta table keeps of a dropped table: statistics, index states.

        :param table: the table name
        :param indexes: the names of its indexes
        """
        if self.exists():
            rows = [_stats_row(table), *(_index_row(table, i) for i in indexes)]
            self._delete_at_own_timestamps(rows)

    def save_checkpoint(self, name: str, document: str) -> None:
        """Store the checkpoint document (JSON text) of a resumable job; the newest write wins.

        :param name: the job's name, e.g. ``"load:people:/data/people.csv"``
        :param document: the job's state, as the job defines it
        """
        self.ensure()
        self._table.put_many([(_checkpoint_row(name), {_JSON: document.encode()})], self._next_ts())

    def load_checkpoint(self, name: str) -> str | None:
        """The checkpoint document saved under ``name``, or ``None`` when there is none."""
        if not self.exists():
            return None
        row = self._table.get_many([_checkpoint_row(name)], columns=[_JSON]).get(
            _checkpoint_row(name)
        )
        return row[_JSON].decode() if row else None

    def clear_checkpoint(self, name: str) -> None:
        """Remove the checkpoint saved under ``name`` (a no-op when there is none)."""
        if self.exists():
            self._table.delete_many([_checkpoint_row(name)], self._next_ts())

    def _next_ts(self) -> int:
        # A delete at T masks every put at <= T: a checkpoint saved in the same millisecond
        # as the clear before it would vanish, so this client's checkpoint writes strictly
        # increase.
        with self._ts_lock:
            self._checkpoint_ts = max(now_ms(), self._checkpoint_ts + 1)
            return self._checkpoint_ts

    def set_state(self, table: str, index: str, state: str) -> int:
        """Set one index's state and bump the generation so writers notice.

        :return: the new generation
        :raises SchemaError: for an unknown state or when no schema is applied
        """
        if state not in INDEX_STATES:
            raise SchemaError(f"{table}.{index}: unknown state {state!r}")

        def change(schema: Schema | None, _states: dict) -> tuple[Schema, dict]:
            if schema is None:
                raise SchemaError("no schema has been applied to this store")
            return schema, {(table, index): state}

        return self.update(change, f"{table}.{index}: setting state {state}")

    def state_since(self, table: str, index: str) -> tuple[str, int] | None:
        """An index's state and the timestamp (ms) it was set at, or ``None`` when unset.

        The builder waits a grace period counted from this timestamp: writers pick a state
        change up at their next batch, and batches begun before it must have finished.
        """
        if not self.exists():
            return None
        row = _index_row(table, index)
        found = self._table.get_many([row], columns=[_STATE], include_timestamp=True)
        cell = found.get(row, {}).get(_STATE)
        return (cell[0].decode(), cell[1]) if cell else None

    def delete_state(self, table: str, index: str) -> None:
        """Forget an index's state (after the index was dropped)."""
        if self.exists():
            self._delete_at_own_timestamps([_index_row(table, index)])

    # -- documents: build plans, checkpoints ----------------------------------------------

    def save_doc(
        self,
        kind: str,
        name: str,
        document: str,
        *,
        create: bool = False,
        not_before: int = 0,
    ) -> int | None:
        """Store a JSON document as row ``kind NUL name`` of the meta table.

        :param kind: what the document is (``"build"``, ``"load"`` …); not a reserved kind
        :param name: its name within the kind
        :param document: the text
        :param create: only if no such document exists (atomic where the store has
            check-and-mutate)
        :param not_before: write at a timestamp at least this (ms): pass the timestamp
            :meth:`load_doc` returned, so that a rewrite from a host whose clock lags still
            supersedes the stored version
        :return: the timestamp written at, or ``None`` when ``create`` found a document
        :raises ValueError: for a reserved kind
        """
        row = _doc_row(kind, name)
        self.ensure()
        ts = max(now_ms(), not_before)
        mutation = RowMutation(row, {_JSON: document.encode()})
        if not create:
            self._table.mutate_many([mutation], ts)
            return ts
        if CAP_CHECK_AND_MUTATE in self.store.capabilities:
            mutation = RowMutation(row, {**mutation.puts, _TAG: _tag()})
            ok = self._table.check_and_mutate(row, _JSON, None, mutation, ts)
            return ts if ok or self._holds(row, mutation, ts) else None
        if self.load_doc(kind, name) is not None:  # racy without check-and-mutate; documented
            return None
        self._table.mutate_many([mutation], ts)
        return ts

    def _holds(self, row: bytes, mutation: RowMutation, ts: int) -> bool:
        # A conditional write retried after its reply was lost (its gateway died) reports
        # "condition failed" although its first attempt applied: the row then holds exactly
        # our cells at our timestamp.
        found = self._table.get_many([row], list(mutation.puts), include_timestamp=True)
        return found.get(row, {}) == {c: (v, ts) for c, v in mutation.puts.items()}

    def load_doc(self, kind: str, name: str) -> tuple[str, int] | None:
        """``(document, timestamp)`` of a stored document, or ``None``."""
        row = _doc_row(kind, name)
        if not self.exists():
            return None
        cell = (
            self._table.get_many([row], columns=[_JSON], include_timestamp=True)
            .get(row, {})
            .get(_JSON)
        )
        return (cell[0].decode(), cell[1]) if cell else None

    def load_docs(self, kind: str, prefix: str = "") -> dict[str, tuple[str, int]]:
        """``{name: (document, timestamp)}`` of the documents of ``kind`` named ``prefix…``."""
        start = _doc_row(kind, prefix)
        if not self.exists():
            return {}
        head = len(_doc_row(kind, ""))
        return {
            key[head:].decode(): (cells[_JSON][0].decode(), cells[_JSON][1])
            for key, cells in self._table.scan(
                prefix=start, columns=[_JSON], include_timestamp=True
            )
            if _JSON in cells
        }

    def delete_doc(self, kind: str, name: str) -> None:
        """Delete a document (a no-op when absent)."""
        if self.exists():
            self._delete_at_own_timestamps([_doc_row(kind, name)])

    def delete_docs(self, kind: str, prefix: str = "") -> int:
        """Delete every document of ``kind`` named ``prefix…``; returns how many."""
        if not self.exists():
            return 0
        rows = [key for key, _ in self._table.scan(prefix=_doc_row(kind, prefix))]
        self._delete_at_own_timestamps(rows)
        return len(rows)

    def _delete_at_own_timestamps(self, rows: list[bytes]) -> None:
        # A delete masks every put at or below its timestamp, even one arriving later. At
        # "now" it could hide a document re-created in the same millisecond (or by a host
        # whose clock lags); at the row's own newest timestamp it hides only what it read.
        found = self._table.get_many(rows, include_timestamp=True)
        by_ts: dict[int, list[bytes]] = {}
        for row, cells in found.items():
            by_ts.setdefault(max(ts for _, ts in cells.values()), []).append(row)
        for ts, group in by_ts.items():
            self._table.delete_many(group, ts)


def _parse_applied(data: dict) -> Schema:
    """The applied schema; a key this client does not know means a newer client applied it
    (the rolling-upgrade case), and the error says so rather than only that it is unknown.

    The strictness stays: a client must not write tables whose rules it does not know."""
    try:
        return parse_schema(data, source=f"{META_TABLE} (applied)")
    except SchemaError as exc:
        if ": unknown key " not in str(exc):
            raise
        raise SchemaError(
            f"{exc}; the schema was applied by a newer culvert_py than this one: upgrade "
            "this client to read or write its tables"
        ) from exc


def _tag() -> bytes:
    return os.urandom(8)
