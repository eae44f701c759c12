"""The storage contract on a real HBase, through its Thrift gateways.

Reads, scans and batched writes go through happybase (the Thrift1 gateway). Two things
Thrift1 cannot do are done over the Thrift2 gateway (``THBaseService``):

- ``checkAndMutate`` — check one cell, then apply several puts and deletes *with timestamps*
  to the row atomically. Thrift1's ``checkAndPut`` takes one column and no timestamp, so it
  cannot condition a whole-row write.
- ``createTable`` with split keys — Thrift1 creates unsplit tables only.

``check_and_mutate_many`` goes to a checkAndMutate sidecar when the URL names one that
answers (one batched call per chunk, :mod:`culvert_py.store.sidecar`), and otherwise — or
when the sidecar fails mid-batch — as one Thrift2 ``checkAndMutate`` per row, run in
parallel on the store's own threads.

A cluster without a Thrift2 gateway still works: the store leaves those capabilities out of
:attr:`HBaseStore.capabilities`, creates tables unsplit with a warning, and raises
:class:`CapabilityError` from ``check_and_mutate`` instead of silently weakening it.

Time-range scans (``scan(time_range=...)``) go through Thrift2 too, whose ``TScan`` has a
lower timestamp bound; without it they fall back to a Thrift1 scan filtered client-side.

Connections, retries and error classification are :mod:`culvert_py.store.gateway`'s; every
write carries an explicit timestamp, so a retried put or delete is idempotent. Scans are
:mod:`culvert_py.store.hbase_scan`'s, Thrift structs :mod:`culvert_py.store.hbase_structs`'.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence

from culvert_py.errors import CapabilityError, StoreError
from culvert_py.store.base import (
    CAP_CHECK_AND_MUTATE,
    CAP_CHECK_AND_MUTATE_MANY,
    CAP_PRESPLIT,
    CAP_SERVER_FILTER,
    Region,
    RowMutation,
    check_create,
    check_distinct_rows,
    check_scan,
    check_time_range,
    check_timestamp,
    chunks,
)
from culvert_py.store.endpoints import (
    check_gateways,
    format_gateways,
    with_sidecars,
)
from culvert_py.store.gateway import Gateway
from culvert_py.store.hbase_conditional import ParallelCalls, conditional_call
from culvert_py.store.hbase_scan import (
    scan_rows,
    scan_rows_first_call,
    scan_rows_reversed,
    scan_rows_since,
    scan_rows_thrift2,
)
from culvert_py.store.hbase_structs import (
    batch_mutation,
    cells,
    filter_bytes,
    table_descriptor,
    thrift2_columns,
    thrift2_put,
    thrift_columns,
)
from culvert_py.store.sidecar import Sidecars, encode_request
from culvert_py.store.thrift_wire import call_mutate_rows_ts, encode_mutate_rows_ts

__all__ = ["HBaseStore", "HBaseTable"]

log = logging.getLogger(__name__)

_ROWS_PER_RPC = 1000


class HBaseStore:
    """The storage contract over HBase's Thrift1 (happybase) and Thrift2 gateways.

    Safe to share between threads: every call borrows a pooled connection. With several
    gateway pairs, calls are spread over them and go around a dead one (see
    :class:`~culvert_py.store.gateway.Gateway`).

    :param host: gateway host
    :param port: Thrift1 gateway port (happybase)
    :param thrift2_port: Thrift2 gateway port, or ``None`` to run without it
    :param pool_size: pooled connections per gateway (one per concurrent caller)
    :param timeout_ms: socket timeout of every call
    :param retries: at most this many retries of a transient failure ...
    :param retry_seconds: ... and for at most this long (long enough to ride out a gateway
        restart or a region move; every write carries its timestamp, so retries are safe)
    :param gateways: several gateway pairs ``(host, port, thrift2_port)`` instead of
        ``host``, ``port`` and ``thrift2_port``
    :param sidecars: ``(host, port)`` of checkAndMutate sidecars for ``check_and_mutate_many``
        (used while one answers; never required)
    :raises ArgumentError: for a ``pool_size`` below 1, or malformed ``gateways``
    :raises StoreError: when no Thrift1 gateway can be reached
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9090,
        thrift2_port: int | None = 9091,
        pool_size: int = 16,
        timeout_ms: int = 120_000,
        retries: int = 1000,
        retry_seconds: float = 60.0,
        gateways: Sequence[tuple[str, int, int | None]] = (),
        sidecars: Sequence[tuple[str, int]] = (),
    ) -> None:
        endpoints = check_gateways(gateways or [(host, port, thrift2_port)])
        self.host, self.port, self.thrift2_port = endpoints[0]
        self.endpoints = endpoints
        self.address = ",".join(f"{e.host}:{e.port}" for e in endpoints)
        self.url = with_sidecars(format_gateways(endpoints), sidecars)
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.retry_seconds = retry_seconds
        self._gateway = Gateway(endpoints, pool_size, timeout_ms, retries, retry_seconds)
        self._parallel = ParallelCalls(pool_size)
        self._sidecars: Sidecars | None = None
        caps = {CAP_SERVER_FILTER}
        if self._gateway.thrift2_error is None:
            caps |= {CAP_CHECK_AND_MUTATE, CAP_PRESPLIT}
            if sidecars:
                # Without Thrift2 there is no path to fall back on: no sidecar then either.
                self._sidecars = Sidecars(sidecars, pool_size, timeout_ms)
                if self._sidecars.up:
                    caps.add(CAP_CHECK_AND_MUTATE_MANY)
                else:
                    log.warning("%s", self.capability_report())
        else:
            log.warning("%s", self.capability_report())
        self.capabilities = frozenset(caps)

    def sidecar_report(self) -> list[tuple[str, bool, int]]:
        """``(host:port, answers, calls made)`` of every checkAndMutate sidecar."""
        return self._sidecars.report() if self._sidecars is not None else []

    def gateway_report(self) -> list[tuple[str, bool, int]]:
        """``(host:port, answers, calls made)`` of every gateway, Thrift1 ones first."""
        return [(t.name, t.up, t.calls) for t in self._gateway.targets]

    def capability_report(self) -> str:
        """Say which capabilities this cluster offers, and what is lost without Thrift2."""
        if self._gateway.thrift2_error is None:
            sidecars = self._sidecars.report() if self._sidecars is not None else []
            up = [name for name, ok, _ in sidecars if ok]
            if up:
                batched = f"batched through the sidecar at {','.join(up)}"
            elif sidecars:
                batched = f"one Thrift2 call per row: no sidecar answers at {sidecars[0][0]}"
            else:
                batched = "one Thrift2 call per row (no sidecar configured)"
            return (
                f"{self.address}: Thrift1 + Thrift2 gateways; check_and_mutate and "
                f"pre-split tables available; check_and_mutate_many {batched}"
            )
        return (
            f"{self.address}: {self._gateway.thrift2_error}. Without a Thrift2 gateway tables "
            "are created unsplit (use `culvert schema ddl` for SPLITS) and check_and_mutate is "
            "unavailable, so concurrent writers to one row are NOT serialised"
        )

    # -- store -------------------------------------------------------------------------

    def table(self, name: str) -> HBaseTable:
        """Return a handle on table ``name`` (no RPC)."""
        return HBaseTable(self, name)

    def create_table(
        self,
        name: str,
        families: Sequence[str],
        split_keys: Sequence[bytes] = (),
        max_versions: int = 1,
        block_size: int | None = None,
    ) -> None:
        """Create ``name`` with ``families`` (block cache on, ROW bloom filter,
        ``max_versions``), pre-split at ``split_keys`` through Thrift2.

        :raises ArgumentError: for a malformed name, family list or split keys
        :raises StoreError: when the table exists or HBase refuses it
        """
        splits = check_create(name, families, split_keys)
        if self.table_exists(name):
            raise StoreError(f"table {name!r} already exists on {self.address}")
        what = f"create table {name!r}"
        if CAP_PRESPLIT in self.capabilities:
            desc = table_descriptor(name, families, max_versions, block_size)
            self._gateway.call_thrift2(what, lambda c: c.createTable(desc, splits or None))
            return
        if splits:
            log.warning("creating %r unsplit: %s", name, self._gateway.thrift2_error)
        # Thrift1's ColumnDescriptor has no block size: the server default applies.
        options = {
            "max_versions": max_versions,
            "block_cache_enabled": True,
            "bloom_filter_type": "ROW",
        }
        self._gateway.call(
            what, lambda c: c.create_table(name, {f: dict(options) for f in families})
        )

    def delete_table(self, name: str) -> None:
        """Disable and drop ``name``; a no-op when it does not exist."""
        if not self.table_exists(name):
            return
        self._gateway.call(f"delete table {name!r}", lambda c: c.delete_table(name, disable=True))

    def table_exists(self, name: str) -> bool:
        """Whether ``name`` exists."""
        return name in self.list_tables()

    def list_tables(self) -> list[str]:
        """All table names, sorted."""
        names = self._gateway.call("list tables", lambda c: c.tables())
        return sorted(n.decode() for n in names)

    def families(self, name: str) -> list[str]:
        """The column families of ``name``, sorted, from the gateway's table descriptor."""
        if not self.table_exists(name):
            raise StoreError(f"table {name!r} does not exist in {self.url}")
        return sorted(f.decode() for f in self.table(name)._all_families())

    def regions(self, name: str) -> list[Region]:
        """The table's regions in key order.

        :raises StoreError: when the table does not exist
        """
        found = self._gateway.call(
            f"regions of {name!r}", lambda c: c.client.getTableRegions(name.encode())
        )
        if not found and not self.table_exists(name):
            raise StoreError(f"table {name!r} does not exist on {self.address}")
        return sorted(Region(r.startKey or b"", r.endKey or b"") for r in found)

    def describe(self) -> str:
        """The gateway address and capabilities."""
        return f"{self.url} (HBase via Thrift; {self.capability_report()})"

    def close(self) -> None:
        """Close every pooled connection; the store is unusable afterwards."""
        if self._sidecars is not None:
            self._sidecars.close()
        self._parallel.close()
        self._gateway.close()

    def __enter__(self) -> HBaseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HBaseTable:
    """One HBase table; see :class:`culvert_py.store.base.Table` for the semantics."""

    def __init__(self, store: HBaseStore, name: str) -> None:
        self._store = store
        self._gateway = store._gateway
        self.name = name
        self._bname = name.encode()
        self._families: list[bytes] | None = None

    def _all_families(self) -> list[bytes]:
        if self._families is None:
            desc = self._gateway.call(
                f"describe {self.name!r}", lambda c: c.client.getColumnDescriptors(self._bname)
            )
            self._families = sorted(f.rstrip(b":") for f in desc)
        return self._families

    # -- writes ------------------------------------------------------------------------

    def mutate_many(self, mutations: Iterable[RowMutation], timestamp: int) -> int:
        """Apply row mutations at ``timestamp``, ``1000`` rows per ``mutateRowsTs`` call.

        :raises ArgumentError: for a malformed timestamp, row key, column or value (checked
            per batch, before the batch is sent)
        :raises StoreError: when HBase refuses a batch (an unknown family, a missing table)
        """
        check_timestamp(timestamp)
        count = 0
        for batch in chunks(mutations, _ROWS_PER_RPC):
            what = f"write {len(batch)} rows to {self.name!r}"
            # The cells the write protocol makes are plain bytes: encoded straight to the wire
            # (a third of a bulk load's client CPU went to per-cell structs). Anything else is
            # built and checked as structs, so errors have one code path.
            args = encode_mutate_rows_ts(self._bname, batch, timestamp)
            if args is not None:
                self._gateway.call(what, lambda c, a=args: call_mutate_rows_ts(c, a))
            else:
                thrift_batch = [batch_mutation(m, self.name) for m in batch]
                self._gateway.call(
                    what,
                    lambda c, b=thrift_batch: c.client.mutateRowsTs(self._bname, b, timestamp, {}),
                )
            count += len(batch)
        return count

    def put_many(self, rows: Iterable[tuple[bytes, Mapping[bytes, bytes]]], timestamp: int) -> int:
        """Write ``(row, cells)`` pairs at ``timestamp``; returns the row count."""
        return self.mutate_many((RowMutation(row, cells) for row, cells in rows), timestamp)

    def put_many_at(self, rows: Iterable[tuple[bytes, Mapping[bytes, bytes], int]]) -> int:
        """Write ``(row, cells, timestamp)`` triples, ``1000`` rows per Thrift2 ``putMultiple``
        (each ``TPut`` carries its own timestamp); without a Thrift2 gateway, one Thrift1
        ``mutateRowsTs`` per distinct timestamp of each batch.
        """
        count = 0
        for batch in chunks(rows, _ROWS_PER_RPC):
            for _, _, ts in batch:
                check_timestamp(ts)
            what = f"write {len(batch)} rows to {self.name!r}"
            if CAP_CHECK_AND_MUTATE in self._store.capabilities:
                puts = [thrift2_put(RowMutation(r, c), ts, self.name) for r, c, ts in batch]
                self._gateway.call_thrift2(what, lambda c, p=puts: c.putMultiple(self._bname, p))
            else:
                by_ts: dict[int, list[RowMutation]] = {}
                for row, cells, ts in batch:
                    by_ts.setdefault(ts, []).append(RowMutation(row, cells))
                for ts, group in by_ts.items():
                    self.mutate_many(group, ts)
            count += len(batch)
        return count

    def delete_many(
        self, rows: Iterable[bytes], timestamp: int, columns: Sequence[bytes] | None = None
    ) -> int:
        """Delete whole rows (every family) or ``columns`` of them at ``timestamp``."""
        cols = (
            tuple(columns) if columns is not None else tuple(f + b":" for f in self._all_families())
        )
        return self.mutate_many((RowMutation(row, {}, cols) for row in rows), timestamp)

    def check_and_mutate(
        self,
        row: bytes,
        column: bytes,
        expected: bytes | None,
        mutation: RowMutation,
        timestamp: int,
    ) -> bool:
        """Atomically check one cell and apply ``mutation`` (Thrift2 ``checkAndMutate``).

        :raises ArgumentError: for malformed arguments (see the contract)
        :raises CapabilityError: when there is no Thrift2 gateway
        """
        check_timestamp(timestamp)
        if CAP_CHECK_AND_MUTATE not in self._store.capabilities:
            what = f"check_and_mutate on {self.name!r}"
            raise CapabilityError(f"{what}: {self._store.capability_report()}")
        return conditional_call(
            self._gateway, self.name, row, column, expected, mutation, timestamp
        )()

    def check_and_mutate_many(
        self,
        items: Sequence[tuple[bytes, bytes, bytes | None, RowMutation]],
        timestamp: int,
    ) -> list[bool]:
        """Many :meth:`check_and_mutate` items: one sidecar call when a sidecar answers,
        else (or when it fails mid-batch) one Thrift2 call per item, in parallel.

        :raises ArgumentError: for any malformed item, before anything is sent
        :raises CapabilityError: when there is no Thrift2 gateway
        :raises StoreError: when HBase refuses an item (an unknown table or family)
        """
        check_timestamp(timestamp)
        items = list(items)
        what = f"check_and_mutate of {len(items)} rows on {self.name!r}"
        if CAP_CHECK_AND_MUTATE not in self._store.capabilities:
            raise CapabilityError(f"{what}: {self._store.capability_report()}")
        if not items:
            return []
        check_distinct_rows(items)
        sidecars = self._store._sidecars

        def thrift2_calls(part: list) -> list:
            return [conditional_call(self._gateway, self.name, *item, timestamp) for item in part]

        if sidecars is None or not sidecars.up:
            return self._store._parallel.run(thrift2_calls(items))
        # Every part encoded (so every item checked) before the first is sent; a part the
        # protocol cannot carry goes through Thrift2, its calls built (checked) now too.
        plan = []
        for part in chunks(items, _ROWS_PER_RPC):
            frame = encode_request(self.name, timestamp, part)
            plan.append((part, frame, thrift2_calls(part) if frame is None else None))
        applied: list[bool] = []
        for part, frame, calls in plan:
            done = sidecars.call(frame, len(part), what) if frame is not None else None
            if done is None:  # no sidecar answered: this part (and what applied of it) again
                done = self._store._parallel.run(calls or thrift2_calls(part))
            applied += done
        return applied

    # -- reads -------------------------------------------------------------------------

    def get_many(
        self,
        rows: Iterable[bytes],
        columns: Sequence[bytes] | None = None,
        include_timestamp: bool = False,
    ) -> dict[bytes, dict]:
        """Read rows, ``1000`` per ``getRowsWithColumns`` call; absent rows are left out."""
        cols = thrift_columns(columns)
        out: dict[bytes, dict] = {}
        for batch in chunks(dict.fromkeys(rows), _ROWS_PER_RPC):
            results = self._gateway.call(
                f"read {len(batch)} rows of {self.name!r}",
                lambda c, b=batch: c.client.getRowsWithColumns(self._bname, b, cols, {}),
            )
            for r in results:
                if r.columns:
                    out[r.row] = cells(r, include_timestamp)
        return out

    def scan_reverse(
        self,
        start: bytes | None = None,
        stop: bytes | None = None,
        columns: Sequence[bytes] | None = None,
        batch_size: int = 1000,
        limit: int | None = None,
    ) -> Iterator[tuple[bytes, dict]]:
        """Iterate rows in descending key order; see :class:`culvert_py.store.base.Table`.

        :return: a generator; closing it releases the server-side scanner
        """
        start, stop = check_scan(start, stop, None, batch_size)
        return scan_rows_reversed(
            self._gateway, self.name, start or b"", stop or None, thrift_columns(columns),
            batch_size,
            limit,
        )  # fmt: skip

    def scan(
        self,
        start: bytes | None = None,
        stop: bytes | None = None,
        prefix: bytes | None = None,
        columns: Sequence[bytes] | None = None,
        filter: str | bytes | None = None,
        batch_size: int = 1000,
        limit: int | None = None,
        include_timestamp: bool = False,
        time_range: tuple[int, int] | None = None,
    ) -> Iterator[tuple[bytes, dict]]:
        """Iterate rows in key order; see :class:`culvert_py.store.base.Table`.

        The arguments are checked now; the first call is made at the first ``next()``. A
        ``time_range`` scan uses a Thrift2 scanner (``TScan.timeRange``); without a Thrift2
        gateway, a Thrift1 scan bounded above by the server and below client-side (same
        rows, but every row with an older cell is read too).

        :return: a generator; closing it (or exhausting or dropping it) releases the
            server-side scanner
        :raises ArgumentError: for a prefix with start/stop, a bad ``batch_size``, column or
            ``time_range``
        """
        start, stop = check_scan(start, stop, prefix, batch_size)
        time_range = check_time_range(time_range)
        flt = filter_bytes(filter)
        thrift2_up = self._gateway.thrift2_error is None

        def paged(first: bytes, wanted: int | None) -> Iterator[tuple[bytes, dict]]:
            args = (self._gateway, self.name, first, stop)
            if time_range is None:
                return scan_rows(
                    *args, thrift_columns(columns), flt, batch_size, wanted, include_timestamp
                )
            if thrift2_up:
                return scan_rows_thrift2(
                    *args, thrift2_columns(columns), flt, batch_size, wanted, include_timestamp,
                    time_range,
                )  # fmt: skip
            log.debug(
                "time-range scan of %r over Thrift1, filtered client-side: %s",
                self.name,
                self._gateway.thrift2_error,
            )
            return scan_rows_since(
                *args, thrift_columns(columns), flt, batch_size, wanted, include_timestamp,
                time_range,
            )  # fmt: skip

        if not thrift2_up or (limit is not None and limit <= 0):
            return paged(start or b"", limit)
        # The first batch in one call (open, read and close on the gateway): a selective
        # scan, which most index scans are, then costs one round trip.
        return scan_rows_first_call(
            self._gateway, self.name, start or b"", stop, thrift2_columns(columns), flt,
            batch_size, limit, include_timestamp, time_range, paged,
        )  # fmt: skip
