"""The storage contract on a real HBase, through its Thrift gateways.

Reads, scans and batched writes go through happybase (the Thrift1 gateway) from a
:class:`happybase.ConnectionPool`, so the store is safe to share between threads. Two things
Thrift1 cannot do are done over the Thrift2 gateway (``THBaseService``) with a small client
built from the project's own IDL (``thrift2.thrift``):

- ``checkAndMutate`` — check one cell, then apply several puts and deletes *with timestamps*
  to the row atomically. Thrift1's ``checkAndPut`` takes one column and no timestamp, so it
  cannot condition a whole-row write.
- ``createTable`` with split keys — Thrift1 creates unsplit tables only.

A cluster without a Thrift2 gateway still works: the store leaves those capabilities out of
:attr:`HBaseStore.capabilities`, creates tables unsplit with a warning, and raises
:class:`CapabilityError` from ``check_and_mutate`` instead of silently weakening it.

Transient failures (connection reset, gateway restart, region moving) are retried with
exponential backoff and full jitter; every write carries an explicit timestamp, so a retried
put or delete is idempotent. Scans fetch each batch with whichever pooled connection is free
(Thrift1 scanner ids belong to the gateway, not the socket) and reopen from the last row seen
when the scanner is lost (lease expiry, gateway restart).
"""

from __future__ import annotations

import logging
import os
import queue
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TypeVar

import happybase
import Hbase_thrift
import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.rpc import make_client
from thriftpy2.thrift import TApplicationException, TException
from thriftpy2.transport import TBufferedTransportFactory, TTransportException

from culvert_py.errors import CapabilityError, StoreError, TransientStoreError
from culvert_py.store.base import (
    CAP_CHECK_AND_MUTATE,
    CAP_PRESPLIT,
    CAP_SERVER_FILTER,
    Region,
    RowMutation,
    check_conditional,
    chunks,
    normalise_column,
    prefix_stop,
)

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_IDL = os.path.join(os.path.dirname(__file__), "thrift2.thrift")
_thrift2 = thriftpy2.load(_IDL, module_name="culvert_thrift2_thrift")

#: How to start the dev server, repeated in every "cannot reach" message.
START_HINT = (
    "start the dev server with `hbase/hbase-local start`, or pass the URL of a running gateway"
)

# Server-side exception names that mean "try again shortly", not "you asked for nonsense".
_TRANSIENT_MARKERS = (
    "NotServingRegionException",
    "RegionMovedException",
    "RegionOpeningException",
    "RegionTooBusyException",
    "ServerNotRunningYetException",
    "PleaseHoldException",
    "CallQueueTooBigException",
    "RetriesExhaustedException",
    "ConnectException",
    "CallTimeoutException",
    "SocketTimeoutException",
)
# A scanner the gateway no longer knows (closed, lease expired, gateway restarted). These are
# not retried in place: the scan reopens after the last row it handed out instead.
_LOST_SCANNER_MARKERS = ("scanner ID is invalid", "UnknownScanner", "OutOfOrderScanner", "Lease")

_ROWS_PER_RPC = 1000
#: Times a scan reopens after losing its scanner before giving up.
_MAX_REOPENS = 10


class HBaseStore:
    """The storage contract over HBase's Thrift1 (happybase) and Thrift2 gateways.

    :param host: gateway host
    :param port: Thrift1 gateway port (happybase)
    :param thrift2_port: Thrift2 gateway port, or ``None`` to run without it
    :param pool_size: pooled Thrift1 connections (one per concurrent caller)
    :param timeout_ms: socket timeout of every call
    :param retries: at most this many retries of a transient failure ...
    :param retry_seconds: ... and for at most this long (long enough to ride out a gateway
        restart or a region move; every write carries its timestamp, so retries are safe)
    :raises StoreError: when the Thrift1 gateway cannot be reached
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
    ) -> None:
        if pool_size < 1:
            raise StoreError(f"pool_size must be >= 1, got {pool_size}")
        self.host, self.port, self.thrift2_port = host, port, thrift2_port
        self.address = f"{host}:{port}"
        self.url = f"hbase://{host}:{port}" + (
            f"?thrift2_port={thrift2_port}" if thrift2_port else "?thrift2_port=0"
        )
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.retry_seconds = retry_seconds
        try:
            # happybase opens the first connection eagerly, so a wrong address fails here.
            self._pool = happybase.ConnectionPool(
                pool_size, host=host, port=port, timeout=timeout_ms, autoconnect=False
            )
        except (TException, OSError) as exc:
            raise StoreError(
                f"cannot reach the HBase Thrift gateway at {self.address}: {_first_line(exc)}; "
                + START_HINT
            ) from None
        self._thrift2_clients: queue.LifoQueue = queue.LifoQueue()
        self._thrift2_error = self._probe_thrift2()
        caps = {CAP_SERVER_FILTER}
        if self._thrift2_error is None:
            caps |= {CAP_CHECK_AND_MUTATE, CAP_PRESPLIT}
        else:
            log.warning("%s", self.capability_report())
        self.capabilities = frozenset(caps)
        self._closed = False
        self._close_lock = threading.Lock()

    # -- capability probing and the Thrift2 client pool --------------------------------

    def _probe_thrift2(self) -> str | None:
        if not self.thrift2_port:
            return "no Thrift2 port configured (thrift2_port=0)"
        try:
            client = self._new_thrift2_client()
            kind = client.getThriftServerType()
        except (TException, OSError) as exc:
            return f"no Thrift2 gateway at {self.host}:{self.thrift2_port} ({_first_line(exc)})"
        if kind != _thrift2.TThriftServerType.TWO:
            client.close()
            return f"{self.host}:{self.thrift2_port} is a Thrift1 gateway, not Thrift2"
        self._thrift2_clients.put(client)
        return None

    def capability_report(self) -> str:
        """Say which capabilities this cluster offers, and what is lost without Thrift2."""
        if self._thrift2_error is None:
            return (
                f"{self.address}: Thrift1 + Thrift2 gateways; check_and_mutate and "
                "pre-split tables available"
            )
        return (
            f"{self.address}: {self._thrift2_error}. Without a Thrift2 gateway tables are "
            "created unsplit (use `culvert schema ddl` for SPLITS) and check_and_mutate is "
            "unavailable, so concurrent writers to one row are NOT serialised"
        )

    def _new_thrift2_client(self):
        return make_client(
            _thrift2.THBaseService,
            self.host,
            self.thrift2_port,
            timeout=self.timeout_ms,
            trans_factory=TBufferedTransportFactory(),
            proto_factory=TBinaryProtocolFactory(),
        )

    def _thrift2_call(self, what: str, fn: Callable[..., _T]) -> _T:
        if self._thrift2_error is not None:
            raise CapabilityError(f"{what}: {self.capability_report()}")

        def attempt() -> _T:
            try:
                client = self._thrift2_clients.get_nowait()
            except queue.Empty:
                client = self._new_thrift2_client()
            try:
                result = fn(client)
            except (TTransportException, OSError, TApplicationException):
                client.close()  # a broken socket never goes back into the pool
                raise
            self._thrift2_clients.put(client)
            return result

        return self._retrying(what, f"{self.host}:{self.thrift2_port}", attempt)

    # -- retries -----------------------------------------------------------------------

    def _retrying(self, what: str, address: str, attempt: Callable[[], _T]) -> _T:
        """Run ``attempt`` until it succeeds, retrying transient failures with backoff."""
        delay = 0.05
        started = time.monotonic()
        for n in range(self.retries + 1):
            try:
                return attempt()
            except Exception as exc:  # classified below; anything unknown is re-raised
                kind = _classify(exc)
                if kind == "other":
                    raise
                if kind == "permanent":
                    raise StoreError(f"{what} on {address}: {_first_line(exc)}") from None
                if n == self.retries or time.monotonic() - started > self.retry_seconds:
                    raise TransientStoreError(
                        f"{what} on {address}: still failing after {n + 1} attempts: "
                        f"{_first_line(exc)}; is HBase up? {START_HINT}"
                    ) from None
                log.info("%s on %s failed (%s); retry %d", what, address, _first_line(exc), n + 1)
                time.sleep(random.uniform(0, delay))  # full jitter
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    def _call(self, what: str, fn: Callable[[happybase.Connection], _T]) -> _T:
        """Run ``fn`` with a pooled Thrift1 connection, with retries."""

        def attempt() -> _T:
            with self._pool.connection(timeout=self.timeout_ms / 1000) as conn:
                return fn(conn)

        return self._retrying(what, self.address, attempt)

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

        :raises StoreError: when the table exists or HBase refuses it
        """
        if not name or not families:
            raise StoreError(f"create_table: need a name and families, got {name!r}, {families!r}")
        if self.table_exists(name):
            raise StoreError(f"table {name!r} already exists on {self.address}")
        splits = sorted(split_keys)
        if len(set(splits)) != len(splits) or any(not k for k in splits):
            raise StoreError(f"table {name!r}: split keys must be distinct and non-empty")
        if self._thrift2_error is None:
            desc = _thrift2.TTableDescriptor(
                tableName=_thrift2.TTableName(qualifier=name.encode()),
                columns=[
                    _thrift2.TColumnFamilyDescriptor(
                        name=f.encode(),
                        maxVersions=max_versions,
                        blockSize=block_size,
                        blockCacheEnabled=True,
                        bloomnFilterType=_thrift2.TBloomFilterType.ROW,
                    )
                    for f in families
                ],
            )
            self._thrift2_call(
                f"create table {name!r}", lambda c: c.createTable(desc, splits or None)
            )
            return
        if splits:
            log.warning("creating %r unsplit: %s", name, self._thrift2_error)
        # Thrift1's ColumnDescriptor has no block size: the server default applies.
        options = {
            "max_versions": max_versions,
            "block_cache_enabled": True,
            "bloom_filter_type": "ROW",
        }
        self._call(
            f"create table {name!r}",
            lambda c: c.create_table(name, {f: dict(options) for f in families}),
        )

    def delete_table(self, name: str) -> None:
        """Disable and drop ``name``; a no-op when it does not exist."""
        if not self.table_exists(name):
            return
        self._call(f"delete table {name!r}", lambda c: c.delete_table(name, disable=True))

    def table_exists(self, name: str) -> bool:
        """Whether ``name`` exists."""
        return name in self.list_tables()

    def list_tables(self) -> list[str]:
        """All table names, sorted."""
        names = self._call("list tables", lambda c: c.tables())
        return sorted(n.decode() for n in names)

    def regions(self, name: str) -> list[Region]:
        """The table's regions in key order."""
        found = self._call(
            f"regions of {name!r}", lambda c: c.client.getTableRegions(name.encode())
        )
        if not found and not self.table_exists(name):
            raise StoreError(f"table {name!r} does not exist on {self.address}")
        return sorted(Region(r.startKey or b"", r.endKey or b"") for r in found)

    def describe(self) -> str:
        """The gateway address and capabilities."""
        return f"{self.url} (HBase via Thrift; {self.capability_report()})"

    def close(self) -> None:
        """Close pooled Thrift2 clients; Thrift1 pool sockets close with the pool."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        while True:
            try:
                self._thrift2_clients.get_nowait().close()
            except queue.Empty:
                break
        # happybase's pool has no close(); close each connection it holds.
        while True:
            try:
                self._pool._queue.get_nowait().close()
            except queue.Empty:
                break

    def __enter__(self) -> HBaseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HBaseTable:
    """One HBase table; see :class:`culvert_py.store.base.Table` for the semantics."""

    def __init__(self, store: HBaseStore, name: str) -> None:
        self._store = store
        self.name = name
        self._bname = name.encode()
        self._families: list[bytes] | None = None

    def _all_families(self) -> list[bytes]:
        if self._families is None:
            desc = self._store._call(
                f"describe {self.name!r}", lambda c: c.client.getColumnDescriptors(self._bname)
            )
            self._families = sorted(f.rstrip(b":") for f in desc)
        return self._families

    # -- writes ------------------------------------------------------------------------

    def mutate_many(self, mutations: Iterable[RowMutation], timestamp: int) -> int:
        """Apply row mutations at ``timestamp``, ``1000`` rows per ``mutateRowsTs`` call."""
        _check_timestamp(timestamp)
        count = 0
        for batch in chunks(mutations, _ROWS_PER_RPC):
            thrift_batch = [_batch_mutation(m, self.name) for m in batch]
            self._store._call(
                f"write {len(batch)} rows to {self.name!r}",
                lambda c, b=thrift_batch: c.client.mutateRowsTs(self._bname, b, timestamp, {}),
            )
            count += len(batch)
        return count

    def put_many(self, rows: Iterable[tuple[bytes, Mapping[bytes, bytes]]], timestamp: int) -> int:
        """Write ``(row, cells)`` pairs at ``timestamp``; returns the row count."""
        return self.mutate_many((RowMutation(row, cells) for row, cells in rows), timestamp)

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
        """Atomically check one cell and apply ``mutation`` (Thrift2 ``checkAndMutate``)."""
        _check_timestamp(timestamp)
        check_conditional(row, expected, mutation)
        family, _, qualifier = normalise_column(column).partition(b":")
        t2 = _thrift2
        muts = []
        if mutation.deletes:
            cols = []
            for col in mutation.deletes:
                fam, _, qual = normalise_column(col).partition(b":")
                cols.append(t2.TColumn(family=fam, qualifier=qual or None, timestamp=timestamp))
            muts.append(
                t2.TMutation(
                    deleteSingle=t2.TDelete(
                        row=row, columns=cols, deleteType=t2.TDeleteType.DELETE_COLUMNS
                    )
                )
            )
        if mutation.puts:
            values = []
            for col, value in mutation.puts.items():
                fam, _, qual = _put_column(col, self.name).partition(b":")
                values.append(
                    t2.TColumnValue(family=fam, qualifier=qual, value=value, timestamp=timestamp)
                )
            muts.append(
                t2.TMutation(put=t2.TPut(row=row, columnValues=values, timestamp=timestamp))
            )
        if expected is None:
            # Thrift2's checkAndMutate cannot test for absence (see thrift2.thrift), and the
            # contract allows only puts with an absent-cell condition: checkAndPut does both.
            put = muts[-1].put
            return self._store._thrift2_call(
                f"check_and_mutate on {self.name!r}",
                lambda c: c.checkAndPut(self._bname, row, family, qualifier, None, put),
            )
        row_mutations = t2.TRowMutations(row=row, mutations=muts)
        return self._store._thrift2_call(
            f"check_and_mutate on {self.name!r}",
            lambda c: c.checkAndMutate(
                self._bname,
                row,
                family,
                qualifier,
                t2.TCompareOperator.EQUAL,
                expected,
                row_mutations,
            ),
        )

    # -- reads -------------------------------------------------------------------------

    def get_many(
        self,
        rows: Iterable[bytes],
        columns: Sequence[bytes] | None = None,
        include_timestamp: bool = False,
    ) -> dict[bytes, dict]:
        """Read rows, ``1000`` per ``getRowsWithColumns`` call; absent rows are left out."""
        cols = _thrift_columns(columns)
        out: dict[bytes, dict] = {}
        for batch in chunks(dict.fromkeys(rows), _ROWS_PER_RPC):
            results = self._store._call(
                f"read {len(batch)} rows of {self.name!r}",
                lambda c, b=batch: c.client.getRowsWithColumns(self._bname, b, cols, {}),
            )
            for r in results:
                if r.columns:
                    out[r.row] = _cells(r, include_timestamp)
        return out

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
    ) -> Iterator[tuple[bytes, dict]]:
        """Iterate rows in key order; see :class:`culvert_py.store.base.Table`."""
        if prefix is not None:
            if start is not None or stop is not None:
                raise ValueError("scan: give either prefix or start/stop, not both")
            start, stop = prefix, prefix_stop(prefix)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        return _Scanner(
            self,
            start or b"",
            stop,
            _thrift_columns(columns),
            filter,
            batch_size,
            limit,
            include_timestamp,
        )


class _Scanner:
    """A scan that survives losing its server-side scanner by reopening after the last row."""

    def __init__(self, table, start, stop, columns, filter, batch_size, limit, include_timestamp):
        self._table = table
        self._store: HBaseStore = table._store
        self._next_start: bytes = start
        self._stop = stop
        self._columns = columns
        self._filter = filter
        self._batch_size = batch_size
        self._remaining = limit
        self._include_timestamp = include_timestamp
        self.scanner_id: int | None = None
        self.reopened = 0
        self._done = False
        self._buffer: list = []

    def __iter__(self) -> _Scanner:
        return self

    def __next__(self) -> tuple[bytes, dict]:
        while not self._buffer:
            if self._done or self._remaining == 0:
                self.close()
                raise StopIteration
            self._buffer = self._fetch()[::-1]
        row, cells = self._buffer.pop()
        self._next_start = row + b"\x00"  # smallest key after this one
        if self._remaining is not None:
            self._remaining -= 1
        return row, cells

    def _open(self) -> int:
        scan = Hbase_thrift.TScan(
            startRow=self._next_start,
            stopRow=self._stop,
            columns=self._columns,
            caching=self._batch_size,
            filterString=_filter_bytes(self._filter),
            sortColumns=False,
        )
        return self._store._call(
            f"open scanner on {self._table.name!r}",
            lambda c: c.client.scannerOpenWithScan(self._table._bname, scan, {}),
        )

    def _fetch(self) -> list:
        want = (
            self._batch_size if self._remaining is None else min(self._batch_size, self._remaining)
        )
        for _ in range(_MAX_REOPENS):
            if self.scanner_id is None:
                self.scanner_id = self._open()
            sid = self.scanner_id
            try:
                results = self._store._call(
                    f"scan {self._table.name!r}",
                    lambda c, sid=sid: c.client.scannerGetList(sid, want),
                )
            except StoreError as exc:
                if not any(m in str(exc) for m in (*_LOST_SCANNER_MARKERS, "still failing")):
                    raise
                # The gateway forgot the scanner (lease expired, gateway restarted): reopen
                # from the row after the last one handed out, so nothing repeats or is lost.
                log.info("scanner on %r lost (%s); reopening", self._table.name, exc)
                self.scanner_id = None
                self.reopened += 1
                continue
            if len(results) < want:
                self._done = True
            return [(r.row, _cells(r, self._include_timestamp)) for r in results]
        raise TransientStoreError(f"scan {self._table.name!r}: scanner lost repeatedly")

    def close(self) -> None:
        """Release the server-side scanner (best effort)."""
        sid, self.scanner_id = self.scanner_id, None
        self._done = True
        if sid is None:
            return
        try:
            with self._store._pool.connection(timeout=5) as conn:
                conn.client.scannerClose(sid)
        except Exception:  # the scanner expires on the server anyway
            log.debug("closing scanner %s failed", sid, exc_info=True)

    def __del__(self) -> None:
        if getattr(self, "scanner_id", None) is not None:
            self.close()


def _classify(exc: BaseException) -> str:
    """``transient`` (retry), ``permanent`` (StoreError now) or ``other`` (not ours)."""
    if isinstance(exc, (TTransportException, ConnectionError, socket.timeout, TimeoutError)):
        return "transient"
    if isinstance(exc, OSError):
        return "transient"
    if isinstance(exc, happybase.pool.NoConnectionsAvailable):
        return "transient"
    if isinstance(
        exc,
        (
            Hbase_thrift.IOError,
            Hbase_thrift.IllegalArgument,
            _thrift2.TIOError,
            _thrift2.TIllegalArgument,
            Hbase_thrift.AlreadyExists,
        ),
    ):
        text = str(getattr(exc, "message", "") or exc)
        if any(marker in text for marker in _TRANSIENT_MARKERS):
            return "transient"
        return "permanent"
    if isinstance(exc, TApplicationException):
        return "permanent"
    return "other"


def _filter_bytes(flt: str | bytes | None) -> bytes | None:
    # Filter strings carry encoded values, which are arbitrary bytes: kept as bytes end to end.
    if not flt:
        return None
    return flt if isinstance(flt, bytes) else flt.encode()


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__


def _thrift_columns(columns: Sequence[bytes] | None) -> list[bytes] | None:
    # Thrift1 reads b"f:" as family f with an EMPTY qualifier; a whole family is b"f".
    if columns is None:
        return None
    return [
        normalise_column(c).rstrip(b":")
        if normalise_column(c).endswith(b":")
        else normalise_column(c)
        for c in columns
    ]


def _put_column(col: bytes, table: str) -> bytes:
    col = normalise_column(col)
    if b":" not in col or col.endswith(b":"):
        raise StoreError(f"table {table!r}: put needs b'family:qualifier', got {col!r}")
    return col


def _batch_mutation(m: RowMutation, table: str):
    if not isinstance(m.row, bytes) or not m.row:
        raise StoreError(f"table {table!r}: row key must be non-empty bytes, got {m.row!r}")
    muts = []
    for col in _thrift_columns(list(m.deletes)) or []:
        muts.append(Hbase_thrift.Mutation(isDelete=True, column=col, writeToWAL=True))
    for col, value in m.puts.items():
        if not isinstance(value, bytes):
            raise StoreError(
                f"table {table!r}: value of {col!r} must be bytes, got {type(value).__name__}"
            )
        muts.append(
            Hbase_thrift.Mutation(column=_put_column(col, table), value=value, writeToWAL=True)
        )
    return Hbase_thrift.BatchMutation(row=m.row, mutations=muts)


def _cells(result, include_timestamp: bool) -> dict:
    if include_timestamp:
        return {col: (cell.value, cell.timestamp) for col, cell in result.columns.items()}
    return {col: cell.value for col, cell in result.columns.items()}


def _check_timestamp(ts: int) -> None:
    if not isinstance(ts, int) or isinstance(ts, bool) or not 0 <= ts < 2**63 - 1:
        raise ValueError(f"timestamp must be an int in [0, 2**63-1), got {ts!r}")
