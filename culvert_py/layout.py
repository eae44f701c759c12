"""Where every value lives in the store: row keys, cells, entry keys, the entries a row owns.

**Primary rows.** Row key = ``enc(k1) | enc(k2) …`` of the table's ``row_key`` columns
(with ``primary_buckets > 1``, after a salt byte ``mmh3(that) mod primary_buckets``: the
table is pre-split there, so increasing keys spread over every region); one
cell ``family:column`` per non-NULL column (the column's encoded value); and the version cell
``family:_v`` = write timestamp, 8 random bytes, flag ``L`` (live) or ``D`` (a tombstone).
**Index entries.** Key = ``salt (1 byte) | enc(v1) | enc(v2) … | primary row key``;
state cell ``i:s`` (verified / unverified); covered columns ``i:c.<column>``.

The salt spreads entries over ``buckets`` pre-split regions: by default it is
``mmh3(primary key) mod buckets`` (``salt = "row"``), so hot values and monotonically
increasing values (timestamps) still spread over every region, and a lookup fans out over
all buckets in parallel, each already sorted by value. With ``salt = "value"`` it is
``mmh3(enc(v1)) mod buckets``: an equality lookup on the first column touches one bucket, at
the price of hot-spotting a hot value. Because every encoding is self-delimiting, the primary
key is whatever follows the last value, and entries for one value sort by primary key.

A text index has one entry per distinct token of the column: ``salt | enc(token) | pk``.

:func:`entries_of` is the one definition of the entries a row owns: the writer writes
exactly these, the executor's consistency check and verify compare against exactly these.

Both kinds of key are checked against :data:`MAX_KEY_BYTES` here, where they are built, so
the API, the loader (which turns the error into a reject) and index builds refuse an
oversized key alike, before anything is written.

**Adopted tables** keep their applications' bytes (:mod:`culvert_py.adopted_rows`): the
key in ``row_key_codec`` or as delimited text, each non-key column in its cell and codec, no
cell for key columns; version cell ``family:_culvert`` (the same struct, then room for more).
"""

from __future__ import annotations

import functools
import random
import struct
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import mmh3

import culvert_py.adopted_rows as adopted_rows
from culvert_py.adopted import ADOPTED_VERSION_QUALIFIER
from culvert_py.encoders import cell_decoder, value_encoder
from culvert_py.encoding import (
    decode_tuple,
    decode_value,
    encode_value,
)
from culvert_py.entries import COVERED_PREFIX as COVERED_PREFIX
from culvert_py.entries import MAX_KEY_BYTES as MAX_KEY_BYTES
from culvert_py.entries import IndexKeys as IndexKeys
from culvert_py.entries import entries_of as entries_of
from culvert_py.errors import ArgumentError, EncodingError, SchemaError
from culvert_py.schema import IndexDef, TableDef

#: Column family of every index table.
INDEX_FAMILY = "i"
#: State cell of an entry: :data:`VERIFIED` or :data:`UNVERIFIED`.
STATE_COLUMN = b"i:s"
VERIFIED = b"v"
UNVERIFIED = b"u"
#: Version cell of a primary row (see :mod:`culvert_py.write`): family-relative qualifier.
VERSION_QUALIFIER = b"_v"

#: HFile block size of primary tables. Index plans fetch primary rows by random get, and
#: a get reads a whole block: 16 KiB instead of HBase's 64 KiB cuts that read by four at a
#: small cost to full scans. Index tables keep the default: they are only ever scanned.
PRIMARY_BLOCK_SIZE = 16 * 1024

_REPR_LIMIT = 60


class TableSpec(NamedTuple):
    """One store table a schema table needs, as :meth:`Store.create_table` takes it."""

    name: str
    families: list[str]
    split_keys: list[bytes]
    max_versions: int
    block_size: int | None


def store_tables(table: TableDef) -> list[TableSpec]:
    """The store tables of ``table``: its primary table, then one pre-split table per index.

    The one description of them, so ``apply_schema`` and ``culvert schema ddl`` (what an
    admin runs on clusters without Thrift2) create the same tables. An adopted table's
    primary table is the application's: it is never among them.
    """
    specs = []
    if not table.existing:
        splits = [bytes((b,)) for b in range(1, table.primary_buckets)]
        specs.append(TableSpec(table.hbase_table, [table.family], splits, 1, PRIMARY_BLOCK_SIZE))
    for index in table.indexes.values():
        splits = IndexKeys(table, index).split_keys()
        specs.append(TableSpec(index.hbase_table, [INDEX_FAMILY], splits, 1, None))
    return specs


def table_families(table: TableDef) -> list[str]:
    """The column families the primary cells of ``table`` live in, sorted."""
    return sorted({table.family, *(c.split(":", 1)[0] for c in table.cells.values())})


def primary_key(table: TableDef, row: Mapping[str, object]) -> bytes:
    """Encode the row key of ``row``.

    :param table: the table definition
    :param row: a row dict holding every ``table.row_key`` column
    :return: the primary row key bytes
    :raises EncodingError: when a row-key column is missing, NULL or of the wrong type, or
        the key takes more than :data:`MAX_KEY_BYTES`
    """
    values = []
    for col in table.row_key:
        value = row.get(col)
        if value is None:
            raise EncodingError(f"{table.name}: row key column {col!r} is missing or null")
        values.append(value)
    if table.existing:
        key = adopted_rows.encode_key(table, values)
    else:
        pairs = zip(table.row_key, values, strict=True)
        key = b"".join(value_encoder(table.columns[c])(v, c) for c, v in pairs)
        if table.primary_buckets > 1:
            key = bytes((mmh3.hash(key, signed=False) % table.primary_buckets,)) + key
    if len(key) > MAX_KEY_BYTES:
        raise EncodingError(
            f"{table.name}: row key takes {len(key):,} bytes, more than HBase's "
            f"{MAX_KEY_BYTES:,} (MAX_KEY_BYTES; values of {', '.join(table.row_key)} too long)"
        )
    return key


def key_tuple(table: TableDef, key: object) -> tuple:
    """Normalise a user-given key (a scalar, a tuple, or a row dict) to the row-key tuple.

    A one-column key is its value (or a 1-tuple); a composite key is a tuple with one value
    per ``table.row_key`` column, in order; a row dict gives its row-key columns.

    :raises ArgumentError: when the key is not of that form (a list is not a tuple)
    """
    if isinstance(key, Mapping):
        return tuple(key.get(c) for c in table.row_key)
    columns = table.row_key
    if len(columns) == 1:
        if isinstance(key, tuple) and len(key) == 1:
            return key
        if isinstance(key, tuple | list | set):
            raise ArgumentError(
                f"{table.name}: key {_shown(key)}: expected one {table.columns[columns[0]]} "
                f"value for row key column {columns[0]!r}, got a {type(key).__name__} of "
                f"{len(key)} (several keys: get_many / delete_many)"
            )
        return (key,)
    if not isinstance(key, tuple):
        raise ArgumentError(
            f"{table.name}: key {_shown(key)}: a composite key is a tuple "
            f"({', '.join(columns)}) or a row dict, got {type(key).__name__}"
        )
    if len(key) != len(columns):
        raise ArgumentError(
            f"{table.name}: key {_shown(key)}: expected a tuple of {len(columns)} values "
            f"({', '.join(columns)}), got {len(key)}"
        )
    return key


def encode_key(table: TableDef, key: object) -> bytes:
    """Encode a user-given key (scalar, tuple or row dict) to primary row-key bytes.

    :param table: the table definition
    :param key: the key, in the form :func:`key_tuple` describes
    :return: the primary row key bytes
    :raises ArgumentError: for a key of the wrong form, a NULL, missing or wrongly typed
        part, or one taking more than :data:`MAX_KEY_BYTES`
    """
    parts = key_tuple(table, key)
    for col, value in zip(table.row_key, parts, strict=True):
        if value is None:
            raise ArgumentError(
                f"{table.name}: key {_shown(key)}: row key column {col!r} is missing or null"
            )
    try:
        return primary_key(table, dict(zip(table.row_key, parts, strict=True)))
    except EncodingError as exc:
        raise ArgumentError(f"{table.name}: key {_shown(key)}: {_unprefixed(exc, table)}") from exc


def decode_primary_key(table: TableDef, key: bytes) -> dict[str, object]:
    """Decode primary row-key bytes back to ``{column: value}`` of the row-key columns.

    :raises EncodingError: for bytes that are no key of the table (an adopted table's
        application may write any key), with the reason
    """
    if table.existing:
        return dict(zip(table.row_key, adopted_rows.decode_key(table, key), strict=True))
    start = 1 if table.primary_buckets > 1 else 0  # the salt byte
    values, _ = decode_tuple(key, [table.columns[c] for c in table.row_key], start)
    return dict(zip(table.row_key, values, strict=True))


def data_column(table: TableDef, column: str) -> bytes:
    """The store column (``b"family:column"``) holding ``column`` in the primary table.

    :raises SchemaError: for a row-key column of an adopted table, which has no cell (it
        lives in the row key; :func:`stored_columns` leaves such columns out)
    """
    if table.existing:
        cell = table.cells.get(column)
        if cell is None:
            raise SchemaError(
                f"{table.name}: column {column!r} has no cell"
                + (" (it lives in the row key)" if column in table.row_key else "")
            )
        return cell.encode()
    return f"{table.family}:{column}".encode()


def stored_columns(table: TableDef, columns: Sequence[str]) -> list[bytes]:
    """The store columns holding ``columns``, in order: what to read for them.

    An adopted table's row-key columns have none (:func:`decode_row` takes them from ``pk``).
    """
    if table.existing:
        return [table.cells[c].encode() for c in columns if c in table.cells]
    return [data_column(table, c) for c in columns]


def version_column(table: TableDef) -> bytes:
    """The store column of the primary row's version cell (``_culvert`` when adopted)."""
    return _version_column(table.existing, table.family)


@functools.lru_cache(maxsize=64)
def _version_column(existing: bool, family: str) -> bytes:
    if existing:
        return f"{family}:{ADOPTED_VERSION_QUALIFIER}".encode()
    return family.encode() + b":" + VERSION_QUALIFIER


def covered_row(
    table: TableDef, index: IndexDef, values: Sequence[object], pk: bytes, cells: Mapping
) -> dict[str, object]:
    """The row an index entry answers on its own: row-key columns, indexed values (not for a
    text index, whose value is one token) and included columns.

    :param values: the entry's decoded values (:meth:`IndexKeys.decode`)
    :param pk: the entry's primary key
    :param cells: the entry's cells (covered columns under :data:`COVERED_PREFIX`)
    """
    row: dict[str, object] = dict(decode_primary_key(table, pk))
    if index.kind != "text":
        row.update({c: v for c, v in zip(index.columns, values, strict=True) if v is not None})
    for column in index.include:
        raw = cells.get(COVERED_PREFIX + column.encode())
        if raw is not None:
            row[column] = decode_value(raw, table.columns[column])[0]
    return row


# -- the row codec ------------------------------------------------------------------------

LIVE = b"L"
DELETED = b"D"
_VERSION = struct.Struct(">Q8sc")
#: Offset of the live/deleted flag in a version cell value (a tail may follow it).
_FLAG = _VERSION.size - 1


def new_version(ts: int, flag: bytes = LIVE, tail: bytes = b"") -> bytes:
    """A version cell value: timestamp, 8 random bytes (unique per write), live/deleted flag,
    then ``tail`` (what an adopted table's version cell carries after the flag).

    The random part lets a writer recognise its own write after an ambiguous failure. It
    comes from :mod:`random`'s generator (seeded from the OS, and seeded again in a forked
    child), not ``os.urandom``: that drops the GIL on every call, and with a writer's pool
    threads busy each call then waited for the GIL again (half a millisecond per row under
    a build's load). Uniqueness is what it needs, not unpredictability.
    """
    return _VERSION.pack(ts, random.getrandbits(64).to_bytes(8, "big"), flag) + tail


def is_deleted(version: bytes | None) -> bool:
    """Whether a version cell value marks a deleted row (a tombstone)."""
    return version is not None and version[_FLAG : _FLAG + 1] == DELETED


def decode_row(
    table: TableDef,
    cells: Mapping[bytes, bytes],
    bad: list | None = None,
    pk: bytes | None = None,
) -> dict[str, object] | None:
    """Turn primary-table cells into a typed row dict; ``None`` for an absent or deleted row.

    Cells may be plain values or ``(value, timestamp)`` pairs. A live row read with a column
    subset may come back as an empty dict (it exists; the columns read are all NULL).

    On an adopted table a cell that does not decode reads as NULL (with ``bad`` a list,
    ``(column, raw bytes, reason)`` is appended); undeclared cells are ignored; a row with
    neither a declared cell nor a version cell is ``None``, one without a version cell live.

    :param bad: where to report an adopted row's undecodable cells (and key)
    :param pk: the row key: an adopted row's key columns come from it (a native row's are cells)
    :raises EncodingError: for a native cell that does not decode
    """
    if not cells:
        return None
    version = cells.get(version_column(table))
    if isinstance(version, tuple):
        version = version[0]
    if is_deleted(version):
        return None
    if table.existing:
        return adopted_rows.decode_cells(table, cells, version is not None, bad, pk)
    decoders = _row_decoders(table.name, table.family, tuple(table.columns.items()))
    row: dict[str, object] = {}
    for column, raw in cells.items():
        known = decoders.get(column)
        if known is None:
            continue  # the version cell, or a column written by someone else
        name, decode = known
        row[name] = decode(raw[0] if isinstance(raw, tuple) else raw)
    return row


@functools.lru_cache(maxsize=64)
def _row_decoders(table: str, family: str, columns: tuple) -> dict[bytes, tuple]:
    """``{b"family:column": (column, decoder)}`` for one table definition."""
    return {f"{family}:{name}".encode(): (name, cell_decoder(typ)) for name, typ in columns}


@functools.lru_cache(maxsize=64)
def _row_encoders(table: str, family: str, columns: tuple) -> dict[str, tuple]:
    """``{column: (b"family:column", encoder, error label)}`` for one native table definition."""
    return {
        name: (f"{family}:{name}".encode(), value_encoder(typ), f"{table}.{name}")
        for name, typ in columns
    }


def encode_row(table: TableDef, row: Mapping[str, object]) -> tuple[dict, list]:
    """Encode a (partial) row: ``({column: bytes}, [columns to delete because None])``.

    :raises SchemaError: for a column the table does not declare
    :raises EncodingError: for a value of the wrong type, naming the column
    """
    puts, deletes = {}, []
    if not table.existing:
        encoders = _row_encoders(table.name, table.family, tuple(table.columns.items()))
        for name, value in row.items():
            known = encoders.get(name)
            if known is None:
                raise SchemaError(
                    f"{table.name}: unknown column {name!r} (known: {', '.join(table.columns)})"
                )
            column, encode, label = known
            if value is None:
                deletes.append(column)
            else:
                puts[column] = encode(value, label)
        return puts, deletes
    for name, value in row.items():
        typ = table.columns.get(name)
        if typ is None:
            raise SchemaError(
                f"{table.name}: unknown column {name!r} (known: {', '.join(table.columns)})"
            )
        if table.existing:
            cell = table.cells.get(name)
            if cell is None:
                continue  # a row-key column: it is the row key, not a cell
            if value is None:
                deletes.append(cell.encode())
            else:
                puts[cell.encode()] = adopted_rows.encode_cell(table, name, value)
        elif value is None:
            deletes.append(data_column(table, name))
        else:
            puts[data_column(table, name)] = encode_value(value, typ, column=f"{table.name}.{name}")
    return puts, deletes


def _shown(value: object) -> str:
    try:
        text = repr(value)
    except ValueError:  # ints beyond sys.get_int_max_str_digits() refuse to print
        return f"<{type(value).__name__} too long to show>"
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _unprefixed(exc: EncodingError, table: TableDef) -> str:
    """The message of ``exc`` without a leading ``table:`` (the caller names the table)."""
    text = str(exc)
    prefix = f"{table.name}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


# -- the shadow of an adopted row ----------------------------------------------------------

#: Bytes of the version struct at the head of a version cell; an adopted row's shadow follows.
VERSION_BYTES = 17


def shadow_of(table: TableDef, row: Mapping[str, object] | None) -> bytes:
    """The shadow of an adopted row (:func:`culvert_py.adopted_rows.shadow_of`)."""
    return adopted_rows.shadow_of(table, row)


def decode_shadow(table: TableDef, version: bytes | None) -> dict[str, object] | None:
    """The row an adopted row's version cell remembers (``None``: no version cell).

    Columns the schema no longer declares, or now declares with another type, are left out.
    """
    if version is None:
        return None
    return adopted_rows.decode_shadow(table, version[VERSION_BYTES:])
