"""The storage contract both stores honour: HBase semantics, stated once.

A store holds tables of rows. A row key is bytes, rows sort by unsigned byte order. A row
holds cells named ``b"family:qualifier"``; each cell has a value (bytes, possibly empty) and
a 64-bit timestamp. Only the newest visible version of a cell is read back.

Semantics every implementation must honour (the contract suite in
``tests/test_store_contract.py`` runs unchanged against each):

- **Explicit timestamps.** Every write names its timestamp. A newer put of a cell wins over an
  older one whatever order they arrive in; two puts at the same timestamp: the later wins.
- **Delete masks.** A delete of a cell (or of a whole family, or a whole row) at timestamp T
  hides every put of that cell with timestamp ``<= T`` — including a put that *arrives later*
  with such a timestamp. (HBase keeps delete markers until a major compaction; the write
  protocol only relies on the mask for the seconds a write takes.)
- **Puts and deletes of the same cell at the same timestamp in one batch:** the delete wins.
- **Row atomicity only.** One row's mutation in a batch is atomic; a batch is not.
- **check_and_mutate** checks one cell (equal to bytes, or absent) and applies puts and deletes
  to that row atomically, or nothing. **check_and_mutate_many** does the same for many rows
  in one call, each item atomic and independent of the others (a batch is not atomic).
- **Regions.** A table created with N split keys has N+1 regions; ``regions()`` returns their
  ``(start, end)`` key bounds, ``b""`` meaning unbounded.

Columns are always given as ``b"family:qualifier"``; ``b"family:"`` (or ``b"family"``) names a
whole family where a column list is accepted.

The argument checks of the contract (``check_*``) live here too, so that every store refuses
the same malformed arguments with the same :class:`~culvert_py.errors.ArgumentError`, before
anything is read or written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

from culvert_py.encoding import prefix_successor as prefix_successor
from culvert_py.errors import ArgumentError

#: Capability names a store may report in :attr:`Store.capabilities`.
CAP_CHECK_AND_MUTATE = "check_and_mutate"
#: ``check_and_mutate_many`` runs as batched calls (not one conditional call per row).
CAP_CHECK_AND_MUTATE_MANY = "check_and_mutate_many"
CAP_PRESPLIT = "presplit"
CAP_SERVER_FILTER = "server_filter"

#: A row as the stores return it: column name -> value, or -> (value, timestamp) when asked.
Cells = dict[bytes, bytes]


class RowMutation(NamedTuple):
    """Puts and deletes for one row, applied atomically at one timestamp.

    :param row: the row key
    :param puts: ``{b"f:q": value}`` cells to write
    :param deletes: columns (``b"f:q"``) or families (``b"f:"``) to delete; deletes mask
        every version at or below the batch timestamp
    """

    row: bytes
    puts: Mapping[bytes, bytes] = {}
    deletes: Sequence[bytes] = ()


class Region(NamedTuple):
    """Key bounds of one region: ``start <= key < end``; ``b""`` means unbounded."""

    start: bytes
    end: bytes


@runtime_checkable
class Table(Protocol):
    """One table of a store. Implementations are safe to share between threads."""

    name: str

    def mutate_many(self, mutations: Iterable[RowMutation], timestamp: int) -> int:
        """Apply puts and deletes to many rows, all at ``timestamp``, in batched calls.

        :param mutations: the row mutations; a row may appear once per call
        :param timestamp: the timestamp of every cell written and every delete mask
        :return: the number of rows mutated
        :raises StoreError: on failure (after retries, for transient errors)
        """
        ...

    def put_many(self, rows: Iterable[tuple[bytes, Mapping[bytes, bytes]]], timestamp: int) -> int:
        """Write ``(row, {column: value})`` pairs at ``timestamp``; returns the row count."""
        ...

    def put_many_at(self, rows: Iterable[tuple[bytes, Mapping[bytes, bytes], int]]) -> int:
        """Write ``(row, {column: value}, timestamp)`` triples, each row's cells at its own
        timestamp, in batched calls (not one call per distinct timestamp).

        :return: the number of rows written
        :raises ArgumentError: for a malformed row, column, value or timestamp
        :raises StoreError: on failure (after retries, for transient errors)
        """
        ...

    def delete_many(
        self, rows: Iterable[bytes], timestamp: int, columns: Sequence[bytes] | None = None
    ) -> int:
        """Delete whole rows (or only ``columns`` of them) at ``timestamp``; returns the count."""
        ...

    def get_many(
        self,
        rows: Iterable[bytes],
        columns: Sequence[bytes] | None = None,
        include_timestamp: bool = False,
    ) -> dict[bytes, dict]:
        """Read many rows in batched calls.

        :param rows: row keys (duplicates allowed)
        :param columns: restrict to these columns or families; ``None`` reads every column
        :param include_timestamp: return ``{column: (value, timestamp)}`` instead of values
        :return: ``{row: cells}`` for the rows that exist (absent rows are left out)
        """
        ...

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
        """Iterate ``(row, cells)`` in key order, lazily, ``batch_size`` rows per call.

        :param start: first row key (inclusive)
        :param stop: row key to stop before (exclusive)
        :param prefix: only rows starting with it (exclusive with start/stop)
        :param columns: restrict to these columns or families
        :param filter: an HBase filter-language string (bytes when it holds binary values),
            evaluated by the server; stores
            without :data:`CAP_SERVER_FILTER` raise :class:`CapabilityError`
        :param batch_size: rows fetched per call
        :param limit: stop after this many rows
        :param include_timestamp: cells as ``(value, timestamp)``
        :param time_range: ``(min, max)``: only cells with ``min <= timestamp < max``, as
            HBase's ``Scan.setTimeRange``; rows with no such cell (among ``columns``) are
            left out, and ``limit`` counts the rows returned. ``None``: every timestamp
        :raises ArgumentError: for a malformed argument (see the ``check_*`` helpers)
        """
        ...

    def scan_reverse(
        self,
        start: bytes | None = None,
        stop: bytes | None = None,
        columns: Sequence[bytes] | None = None,
        batch_size: int = 1000,
        limit: int | None = None,
    ) -> Iterator[tuple[bytes, dict]]:
        """Iterate ``(row, cells)`` of ``start <= row < stop`` in *descending* key order,
        lazily, ``batch_size`` rows per call (HBase's reversed scan): the last rows of a
        range without reading the rest.

        :param start: lowest row key (inclusive; ``None``: the table's first)
        :param stop: row key to stay below (exclusive; ``None``: past the table's last)
        :param columns: restrict to these columns or families
        :param batch_size: rows fetched per call
        :param limit: stop after this many rows
        :raises ArgumentError: for a ``batch_size`` below 1
        """
        ...

    def check_and_mutate(
        self,
        row: bytes,
        column: bytes,
        expected: bytes | None,
        mutation: RowMutation,
        timestamp: int,
    ) -> bool:
        """Atomically: if ``column`` of ``row`` equals ``expected`` (``None``: is absent),
        apply ``mutation`` (its row must be ``row``) at ``timestamp``.

        The mutation needs at least one put; with ``expected=None`` it may hold puts only
        (HBase 2.6's Thrift2 gateway can test absence only through ``checkAndPut``). Do not
        condition on an empty value: HBase reads an empty cell as absent in a condition
        (``None`` matches it, and ``b""`` matches an absent cell); SQLite does not.

        :return: ``True`` if the mutation was applied
        :raises CapabilityError: when the store cannot do this atomically
        """
        ...

    def check_and_mutate_many(
        self,
        items: Sequence[tuple[bytes, bytes, bytes | None, RowMutation]],
        timestamp: int,
    ) -> list[bool]:
        """:meth:`check_and_mutate` of many rows at ``timestamp``: each item
        ``(row, column, expected, mutation)`` is checked and applied atomically on its own,
        with the same rules; the batch as a whole is not atomic, and a row may appear once
        per call. Every item is checked before anything is sent. Stores with
        :data:`CAP_CHECK_AND_MUTATE_MANY` send it in batched calls; others make one call
        per item (in parallel).

        A store that retries a batch after a lost reply reports an item whose first attempt
        had applied as not applied (its cell no longer holds ``expected``), exactly as a
        retried :meth:`check_and_mutate` does.

        :return: for each item, whether its mutation was applied
        :raises ArgumentError: for any malformed item, before anything is written
        :raises CapabilityError: when the store cannot do this atomically
        """
        ...


@runtime_checkable
class Store(Protocol):
    """A connection to a store of tables; a context manager that closes itself."""

    url: str
    capabilities: frozenset[str]

    def table(self, name: str) -> Table:
        """Return a handle on table ``name`` (no RPC; a missing table fails on first use)."""
        ...

    def create_table(
        self,
        name: str,
        families: Sequence[str],
        split_keys: Sequence[bytes] = (),
        max_versions: int = 1,
        block_size: int | None = None,
    ) -> None:
        """Create a table with column ``families``, pre-split at ``split_keys``.

        ``block_size`` (bytes) sets the HFile block size of every family: small blocks make
        random gets cheaper (one block read per row), large ones make scans cheaper; ``None``
        keeps the server default (64 KiB). Stores without blocks ignore it.

        :raises StoreError: if the table exists or the store refuses it
        """
        ...

    def delete_table(self, name: str) -> None:
        """Drop a table and its data; a no-op when it does not exist."""
        ...

    def table_exists(self, name: str) -> bool:
        """Whether table ``name`` exists."""
        ...

    def list_tables(self) -> list[str]:
        """Names of all tables, sorted."""
        ...

    def families(self, name: str) -> list[str]:
        """The column families of table ``name``, sorted.

        :raises StoreError: when the table does not exist
        """
        ...

    def regions(self, name: str) -> list[Region]:
        """The table's regions in key order; :class:`Region` bounds."""
        ...

    def describe(self) -> str:
        """One line naming the store, its address and version, for humans."""
        ...

    def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...

    def __enter__(self) -> Store: ...

    def __exit__(self, *exc: object) -> None: ...


#: Timestamps are Java longs; HBase reserves ``Long.MAX_VALUE`` for "latest".
MAX_TIMESTAMP = 2**63 - 2


def check_timestamp(timestamp: int) -> None:
    """Check a write timestamp: an ``int`` (not a ``bool``) in ``[0, 2**63-1)``.

    :raises ArgumentError: for anything else, naming the value
    """
    if (
        not isinstance(timestamp, int)
        or isinstance(timestamp, bool)
        or not 0 <= timestamp <= MAX_TIMESTAMP
    ):
        raise ArgumentError(f"timestamp must be an int in [0, 2**63-1), got {timestamp!r}")


def check_create(name: str, families: Sequence[str], split_keys: Sequence[bytes]) -> list[bytes]:
    """Check the arguments of ``create_table`` the same way in every store.

    :param name: the table name: a non-empty ``str``
    :param families: at least one family name, each a non-empty ``str`` without ``:``
    :param split_keys: distinct non-empty ``bytes``, in any order
    :return: the split keys, sorted
    :raises ArgumentError: naming the table and what is wrong
    """
    if not isinstance(name, str) or not name:
        raise ArgumentError(f"table name must be a non-empty string, got {name!r}")
    if isinstance(families, str | bytes) or not families:
        raise ArgumentError(
            f"table {name!r}: at least one column family is required, got {families!r}"
        )
    for family in families:
        if not isinstance(family, str) or not family or ":" in family:
            raise ArgumentError(
                f"table {name!r}: family names must be non-empty strings without ':', "
                f"got {family!r}"
            )
    if isinstance(split_keys, bytes) or any(not isinstance(k, bytes) or not k for k in split_keys):
        raise ArgumentError(f"table {name!r}: split keys must be non-empty bytes")
    splits = sorted(split_keys)
    if len(set(splits)) != len(splits):
        raise ArgumentError(f"table {name!r}: duplicate split keys")
    return splits


def check_row(row: bytes, table: str) -> None:
    """Check a row key of a write: non-empty ``bytes``.

    :raises ArgumentError: naming the table and the key
    """
    if not isinstance(row, bytes) or not row:
        raise ArgumentError(f"table {table!r}: row key must be non-empty bytes, got {row!r}")


def check_put(column: bytes | str, value: bytes, table: str) -> bytes:
    """Check one cell of a put: a ``b"family:qualifier"`` column and a ``bytes`` value.

    :return: the column as bytes
    :raises ArgumentError: for a column naming no qualifier, or a value that is not bytes
    """
    col = normalise_column(column)
    if b":" not in col or col.endswith(b":"):
        raise ArgumentError(f"table {table!r}: put needs b'family:qualifier', got {col!r}")
    if not isinstance(value, bytes):
        raise ArgumentError(
            f"table {table!r}: value of {col!r} must be bytes, got {type(value).__name__}"
        )
    return col


def check_scan(
    start: bytes | None, stop: bytes | None, prefix: bytes | None, batch_size: int
) -> tuple[bytes | None, bytes | None]:
    """Check the arguments of ``scan`` and turn a ``prefix`` into its key range.

    :return: ``(start, stop)``; with a prefix, ``(prefix, prefix_successor(prefix))``
    :raises ArgumentError: for a prefix given with start/stop, or a ``batch_size`` below 1
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ArgumentError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if prefix is None:
        return start, stop
    if start is not None or stop is not None:
        raise ArgumentError("scan: give either prefix or start/stop, not both")
    return prefix, prefix_successor(prefix)


def check_time_range(time_range: tuple[int, int] | None) -> tuple[int, int] | None:
    """Check the ``time_range`` of ``scan``: ``None``, or two ints ``(min, max)`` with
    ``0 <= min <= max < 2**63`` (``max`` is exclusive; ``min == max`` matches nothing).

    :return: the range as a tuple, or ``None``
    :raises ArgumentError: for anything else, naming the value
    """
    if time_range is None:
        return None
    if (
        not isinstance(time_range, tuple | list)
        or len(time_range) != 2
        or any(not isinstance(t, int) or isinstance(t, bool) for t in time_range)
        or not 0 <= time_range[0] <= time_range[1] < 2**63
    ):
        raise ArgumentError(
            f"time_range must be two ints (min, max) with 0 <= min <= max < 2**63, "
            f"got {time_range!r}"
        )
    return time_range[0], time_range[1]


def check_conditional(row: bytes, expected: bytes | None, mutation: RowMutation) -> None:
    """Validate the arguments of ``check_and_mutate`` the same way in every store.

    :raises ArgumentError: for a mutation of another row, one without puts, or deletes under
        an absent-cell condition
    """
    if mutation.row != row:
        raise ArgumentError(f"check_and_mutate: mutation row {mutation.row!r} is not {row!r}")
    if not mutation.puts:
        raise ArgumentError("check_and_mutate: the mutation needs at least one put")
    if expected is None and mutation.deletes:
        raise ArgumentError(
            "check_and_mutate: an absent-cell condition (expected=None) takes puts only"
        )


def check_distinct_rows(items: Sequence[tuple]) -> None:
    """Check that the ``(row, …)`` items of one ``check_and_mutate_many`` name each row once
    (the order two conditional writes of one row take inside one batch is undefined).

    :raises ArgumentError: naming a row given twice
    """
    if len({item[0] for item in items}) != len(items):
        seen: set = set()
        twice = next(item[0] for item in items if item[0] in seen or seen.add(item[0]))
        raise ArgumentError(f"check_and_mutate_many: row {twice!r} is given more than once")


def family_of(column: bytes) -> bytes:
    """Return the family part of ``b"family:qualifier"`` (or of ``b"family"``)."""
    return column.split(b":", 1)[0]


def normalise_column(column: bytes | str) -> bytes:
    """Return ``column`` as bytes, rejecting anything that names no family.

    :raises ArgumentError: for an empty family, or a column that is neither bytes nor str
    """
    if isinstance(column, str):
        column = column.encode()
    if not isinstance(column, bytes) or not column or column.startswith(b":"):
        raise ArgumentError(f"column {column!r}: expected b'family:qualifier' or b'family:'")
    return column


def chunks(items: Iterable, size: int) -> Iterator[list]:
    """Yield lists of at most ``size`` items from ``items``, lazily."""
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


prefix_stop = prefix_successor  # alias kept until callers move
