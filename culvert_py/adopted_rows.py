"""Adopted tables' rows in their applications' own bytes: row keys, cells, what decodes.

The half of :mod:`culvert_py.layout` for adopted (``existing = true``) tables, which says
what the bytes are (see its module doc); callers go through ``layout``, which dispatches here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from culvert_py.codecs import Codec, codec_for
from culvert_py.errors import EncodingError
from culvert_py.schema import TableDef
from culvert_py.values import check_value, short_repr


def decode_cells(
    table: TableDef, cells: Mapping, versioned: bool, bad: list | None, pk: bytes | None
) -> dict[str, object] | None:
    """The row an adopted table's cells hold (see :func:`culvert_py.layout.decode_row`).

    :param cells: the row's cells, plain values or ``(value, timestamp)`` pairs
    :param versioned: whether the row has a live version cell
    :param bad: a list to append ``(column, raw bytes, reason)`` of undecodable cells to
    :param pk: the row key, for the row-key columns; ``None`` leaves them out
    :return: the row; ``None`` when it has neither a declared cell nor a version cell
    """
    decoders = _adopted_decoders(
        tuple((c, cell, table.columns[c], table.codecs[c]) for c, cell in table.cells.items())
    )
    row: dict[str, object] = {}
    seen = versioned
    for column, raw in cells.items():
        known = decoders.get(column)
        if known is None:
            continue  # the version cell, or a cell the schema does not declare
        seen = True
        name, codec = known
        data = raw[0] if isinstance(raw, tuple) else raw
        try:
            row[name] = codec.decode(data)
        except EncodingError as exc:
            if bad is not None:
                bad.append((name, data, str(exc)))
    if not seen:
        return None
    if pk is not None:
        try:
            row.update(zip(table.row_key, decode_key(table, pk), strict=True))
        except EncodingError as exc:
            if bad is not None:
                bad.extend((c, pk, str(exc)) for c in table.row_key)
    return row


@functools.lru_cache(maxsize=64)
def _adopted_decoders(cells: tuple) -> dict[bytes, tuple[str, Codec]]:
    """``{b"family:qualifier": (column, codec)}`` for one adopted table definition."""
    return {cell.encode(): (name, codec_for(typ, codec)) for name, cell, typ, codec in cells}


def encode_cell(table: TableDef, column: str, value: object) -> bytes:
    """The bytes of a non-NULL ``value`` of ``column`` in its codec.

    :raises EncodingError: for a value of the wrong type or one the codec cannot hold
    """
    codec = codec_for(table.columns[column], table.codecs[column])
    return codec.encode(value, column=f"{table.name}.{column}")


def encode_key(table: TableDef, values: Sequence[object]) -> bytes:
    """The row key of an adopted table from its row-key values (none NULL).

    :raises EncodingError: for a value of the wrong type or range, or a composite part that
        contains the delimiter
    """
    if table.row_key_delimiter is None:
        (col,), (value,) = table.row_key, values
        typ, codec = table.columns[col], table.row_key_codec
        if codec == "utf8":
            return _key_text(table, col, value).encode("utf-8")
        return codec_for(typ, codec).encode(value, column=col)
    delimiter = table.row_key_delimiter
    parts = []
    for col, value in zip(table.row_key, values, strict=True):
        text = _key_text(table, col, value)
        if delimiter in text:
            raise EncodingError(
                f"column {col!r}: {short_repr(text)} contains the row key delimiter "
                f"{delimiter!r}, so the key could not be split back"
            )
        parts.append(text)
    return delimiter.join(parts).encode("utf-8")


def _key_text(table: TableDef, col: str, value: object) -> str:
    """A str or int row-key value as text: the str itself, the int in decimal."""
    normal = check_value(value, table.columns[col], column=col)
    return normal if isinstance(normal, str) else str(normal)


def decode_key(table: TableDef, key: bytes) -> list[object]:
    """The row-key values an adopted table's key holds, in ``row_key`` order.

    :raises EncodingError: for bytes that are no key of the table, with the reason
    """
    try:
        if table.row_key_delimiter is None:
            col = table.row_key[0]
            typ, codec = table.columns[col], table.row_key_codec
            if codec == "utf8":
                return [_key_part(table, col, _utf8(key))]
            return [codec_for(typ, codec).decode(key)]
        parts = _utf8(key).split(table.row_key_delimiter)
        if len(parts) != len(table.row_key):
            raise EncodingError(
                f"{len(parts)} part(s) between {table.row_key_delimiter!r}, expected "
                f"{len(table.row_key)} ({', '.join(table.row_key)})"
            )
        return [_key_part(table, c, p) for c, p in zip(table.row_key, parts, strict=True)]
    except EncodingError as exc:
        raise EncodingError(f"{table.name}: row key {short_repr(key)}: {exc}") from None


def _utf8(key: bytes) -> str:
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EncodingError(f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def _key_part(table: TableDef, col: str, text: str) -> object:
    if table.columns[col] == "str":
        return text
    value = codec_for("int", "text").decode(text.encode("utf-8"))
    if str(value) != text:
        # "007" would read as 7, whose key is "7": another row. Only the one spelling is a key.
        raise EncodingError(f"column {col!r}: {text!r} is not the decimal form of an int key")
    return value
