"""The entries a row owns in an index: keys, covered cells, salt buckets.

Key = ``salt (1 byte) | enc(v1) | enc(v2) … | primary row key``; a text index has one entry
per distinct token (``salt | enc(token) | pk``). :func:`entries_of` is the one definition of
what an index holds for a row: the writer writes exactly these, the executor's consistency
check and verify compare against exactly these (:mod:`culvert_py.layout` re-exports both).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import mmh3

from culvert_py.encoders import value_encoder
from culvert_py.encoding import decode_tuple, encode_tuple, encode_value
from culvert_py.errors import EncodingError
from culvert_py.predicate import matches
from culvert_py.schema import IndexDef, TableDef
from culvert_py.text import tokenize

#: Covered (INCLUDE) column ``c`` is stored as ``i:c.<c>``.
COVERED_PREFIX = b"i:c."
# The salt byte of each bucket (at most 256 buckets: one byte).
_SALTS = [bytes((b,)) for b in range(256)]
#: Largest row key HBase accepts (its length is a Java ``short``): the one limit for primary
#: keys and index entry keys (salt + encoded values + primary key).
MAX_KEY_BYTES = 32767


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
        self._encoders = [
            value_encoder(t, descending=d) for t, d in zip(self.types, self.descending, strict=True)
        ]
        self._labels = list(index.columns[: len(self.types)])
        # What every entry key of a write needs, resolved once: most indexes have one column.
        self._single = (self._encoders[0], self._labels[0]) if len(self._encoders) == 1 else None
        self._value_salt = index.salt == "value"
        self._buckets = index.buckets
        self._covered = [
            (COVERED_PREFIX + c.encode(), c, value_encoder(table.columns[c]), f"{table.name}.{c}")
            for c in index.include
        ]

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
        return [tuple([row.get(c) for c in self.index.columns])]

    def entry_key(self, values: Sequence[object], pk: bytes) -> bytes:
        """The full entry key for ``values`` of the row with primary key ``pk``.

        :raises EncodingError: for a value of the wrong type, or a key taking more than
            :data:`MAX_KEY_BYTES`
        """
        single = self._single
        if single is not None and len(values) == 1:
            first = encoded = single[0](values[0], single[1])
        elif len(values) == len(self._encoders):
            parts = [e(v, c) for e, v, c in zip(self._encoders, values, self._labels, strict=True)]
            first, encoded = parts[0], b"".join(parts)
        else:
            encoded = self.encode_values(values)
            first = encode_value(values[0], self.types[0], descending=self.descending[0])
        size = 1 + len(encoded) + len(pk)
        if size > MAX_KEY_BYTES:
            raise EncodingError(
                f"{self.index.path}: entry key takes {size:,} bytes, more than HBase's "
                f"{MAX_KEY_BYTES:,} (MAX_KEY_BYTES; values of "
                f"{', '.join(self.index.columns)} too long to index)"
            )
        # bucket_of, inlined: it runs once per entry written.
        bucket = mmh3.hash(first if self._value_salt else pk, signed=False) % self._buckets
        return _SALTS[bucket] + encoded + pk

    def entry_keys(self, row: Mapping[str, object], pk: bytes) -> list[bytes]:
        """Every entry key of ``row`` (whose primary key is ``pk``)."""
        if self._single is not None and self.index.kind != "text":
            # One value, one entry (most indexes): no tuple of values to build first.
            return [self.entry_key((row.get(self._labels[0]),), pk)]
        return [self.entry_key(values, pk) for values in self.entry_values(row)]

    def decode(self, key: bytes) -> tuple[tuple, bytes]:
        """Split an entry key into its value tuple and primary key."""
        values, offset = decode_tuple(key, self.types, 1, descending=self.descending)
        return values, key[offset:]


def entries_of(
    table: TableDef,
    index: IndexDef,
    row: Mapping[str, object] | None,
    pk: bytes,
    keys: IndexKeys | None = None,
) -> dict[bytes, dict[bytes, bytes | None]]:
    """The entries ``row`` owns in ``index``: ``{entry key: {covered cell: bytes or None}}``.

    The one definition of what an index holds for a row — none for an absent row or a row a
    partial index's ``where`` excludes; one per value tuple (one per word for a text index)
    otherwise, each with its covered values encoded (``None``: the column is NULL).

    :param table: the table definition
    :param index: the index
    :param row: the row's current values, or ``None`` when there is no row
    :param pk: the row's primary key
    :param keys: the index's :class:`IndexKeys`, when the caller keeps one
    :raises EncodingError: for a value of the wrong type or an oversized key
    """
    if row is None:
        return {}
    if index.predicate is not None and not matches(index.predicate, row):
        return {}
    keys = keys or IndexKeys(table, index)
    covered = {}
    for cell, column, encode, label in keys._covered:
        value = row.get(column)
        covered[cell] = None if value is None else encode(value, label)
    return {key: covered for key in keys.entry_keys(row, pk)}
