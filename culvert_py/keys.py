"""Row-key layouts: primary keys and index entry keys, both ways.

Primary row key = ``enc(k1) | enc(k2) …`` of the table's ``row_key`` columns.
Index entry key = ``salt (1 byte) | enc(v1) | enc(v2) … | primary row key``.

The salt spreads entries over ``buckets`` pre-split regions: by default it is
``mmh3(primary key) mod buckets`` (``salt = "row"``), so hot values and monotonically
increasing values (timestamps) still spread over every region, and a lookup fans out over
all buckets in parallel, each already sorted by value. With ``salt = "value"`` it is
``mmh3(enc(v1)) mod buckets``: an equality lookup on the first column touches one bucket, at
the price of hot-spotting a hot value. Because every encoding is self-delimiting, the primary
key is whatever follows the last value, and entries for one value sort by primary key.

A text index has one entry per distinct token of the column: ``salt | enc(token) | pk``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import mmh3

from culvert_py.encoding import decode_tuple, decode_value, encode_tuple, encode_value
from culvert_py.errors import EncodingError
from culvert_py.schema import IndexDef, TableDef
from culvert_py.text import tokenize

#: Column family of every index table.
INDEX_FAMILY = "i"
#: State cell of an entry: :data:`VERIFIED` or :data:`UNVERIFIED`.
STATE_COLUMN = b"i:s"
VERIFIED = b"v"
UNVERIFIED = b"u"
#: Covered (INCLUDE) column ``c`` is stored as ``i:c.<c>``.
COVERED_PREFIX = b"i:c."
#: Version cell of a primary row (see maintain.py): family-relative qualifier.
VERSION_QUALIFIER = b"_v"


def primary_key(table: TableDef, row: Mapping[str, object]) -> bytes:
    """Encode the row key of ``row``.

    :param table: the table definition
    :param row: a row dict holding every ``table.row_key`` column
    :return: the primary row key bytes
    :raises EncodingError: when a row-key column is missing, NULL or of the wrong type
    """
    values = []
    for col in table.row_key:
        value = row.get(col)
        if value is None:
            raise EncodingError(f"{table.name}: row key column {col!r} is missing or null")
        values.append(value)
    return encode_tuple(values, [table.columns[c] for c in table.row_key], columns=table.row_key)


def key_tuple(table: TableDef, key: object) -> tuple:
    """Normalise a user-given key (a scalar, a tuple, or a row dict) to the row-key tuple.

    :raises EncodingError: when the number of parts does not match ``table.row_key``
    """
    if isinstance(key, Mapping):
        return tuple(key.get(c) for c in table.row_key)
    parts = key if isinstance(key, tuple) else (key,)
    if len(parts) != len(table.row_key):
        raise EncodingError(
            f"{table.name}: key {key!r} has {len(parts)} part(s); the row key is "
            f"({', '.join(table.row_key)})"
        )
    return parts


def encode_key(table: TableDef, key: object) -> bytes:
    """Encode a user-given key (scalar, tuple or row dict) to primary row-key bytes."""
    return primary_key(table, dict(zip(table.row_key, key_tuple(table, key), strict=True)))


def decode_primary_key(table: TableDef, key: bytes) -> dict[str, object]:
    """Decode primary row-key bytes back to ``{column: value}`` of the row-key columns."""
    values, _ = decode_tuple(key, [table.columns[c] for c in table.row_key])
    return dict(zip(table.row_key, values, strict=True))


def data_column(table: TableDef, column: str) -> bytes:
    """The store column (``b"family:column"``) holding ``column`` in the primary table."""
    return f"{table.family}:{column}".encode()


def version_column(table: TableDef) -> bytes:
    """The store column of the primary row's version cell."""
    return table.family.encode() + b":" + VERSION_QUALIFIER


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


class IndexKeys:
    """Encodes and decodes the entry keys of one index.

    :param table: the table the index belongs to
    :param index: the index definition
    """

    def __init__(self, table: TableDef, index: IndexDef) -> None:
        self.table = table
        self.index = index
        if index.kind == "text":
            self.types: list[str] = ["str"]
            self.descending: list[bool] = [False]
        else:
            self.types = [table.columns[c] for c in index.columns]
            self.descending = [c in index.descending for c in index.columns]

    def split_keys(self) -> list[bytes]:
        """Region boundaries of the index table: one region per salt bucket."""
        return [bytes([b]) for b in range(1, self.index.buckets)]

    def bucket_of(self, encoded_first_value: bytes, pk: bytes) -> int:
        """The salt bucket of an entry."""
        basis = encoded_first_value if self.index.salt == "value" else pk
        return mmh3.hash(basis, signed=False) % self.index.buckets

    def encode_values(self, values: Sequence[object]) -> bytes:
        """The encoded value part of an entry key (no salt, no primary key)."""
        return encode_tuple(
            values,
            self.types[: len(values)],
            descending=self.descending[: len(values)],
            columns=list(self.index.columns[: len(values)]),
        )

    def entry_values(self, row: Mapping[str, object]) -> list[tuple]:
        """The value tuples ``row`` is indexed under: one for term/range indexes, one per
        distinct token for text indexes, none for a text column that is NULL or has no words."""
        if self.index.kind == "text":
            text = row.get(self.index.columns[0])
            return [] if text is None else [(token,) for token in tokenize(text)]
        return [tuple(row.get(c) for c in self.index.columns)]

    def entry_key(self, values: Sequence[object], pk: bytes) -> bytes:
        """The full entry key for ``values`` of the row with primary key ``pk``."""
        encoded = self.encode_values(values)
        first = encode_value(values[0], self.types[0], descending=self.descending[0])
        return bytes([self.bucket_of(first, pk)]) + encoded + pk

    def entry_keys(self, row: Mapping[str, object], pk: bytes) -> list[bytes]:
        """Every entry key of ``row`` (whose primary key is ``pk``)."""
        return [self.entry_key(values, pk) for values in self.entry_values(row)]

    def decode(self, key: bytes) -> tuple[tuple, bytes]:
        """Split an entry key into its value tuple and primary key."""
        values, offset = decode_tuple(key, self.types, 1, descending=self.descending)
        return values, key[offset:]
