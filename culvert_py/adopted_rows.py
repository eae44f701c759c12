"""Adopted tables' rows in their applications' own bytes: row keys, cells, what decodes.

The half of :mod:`culvert_py.layout` for adopted (``existing = true``) tables, which says
what the bytes are (see its module doc); callers go through ``layout``, which dispatches here.
That includes the *shadow* each adopted row's version cell carries (see
``docs/adopted-tables.md``).

Builds and syncs run these functions once per row, so what depends only on the table
definition (decoders, the shadow's per-column headers) is computed once per definition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from culvert_py.codecs import Codec, codec_for
from culvert_py.encoders import unchecked_value_encoder
from culvert_py.encoding import decode_value, encode_value
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
    decoders = _derived(table).decoders
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


class _Derived:
    """What one adopted table definition implies for every row: decoders, shadow layout."""

    def __init__(self, table: TableDef) -> None:
        #: ``{b"family:qualifier": (column, codec)}``
        self.decoders: dict[bytes, tuple[str, Codec]] = {
            cell.encode(): (name, codec_for(table.columns[name], table.codecs[name]))
            for name, cell in table.cells.items()
        }
        #: ``(column, encoded name and type, value encoder)`` in shadow order (by name)
        self.shadow: list[tuple[str, bytes, Callable[[object], bytes]]] = [
            (
                name,
                encode_value(name, "str") + encode_value(typ, "str"),
                unchecked_value_encoder(typ),
            )
            for name, typ in sorted(table.columns.items())
            if name not in table.row_key
        ]


_DERIVED: dict[int, tuple[TableDef, _Derived]] = {}
_DERIVED_MAX = 64


def _derived(table: TableDef) -> _Derived:
    """The :class:`_Derived` of ``table``, computed once per definition object.

    Keyed by identity: hashing a definition (its dicts) per row would cost more than the
    lookup saves. The entry holds the definition, so its id cannot be reused while cached.
    """
    found = _DERIVED.get(id(table))
    if found is not None and found[0] is table:
        return found[1]
    if len(_DERIVED) >= _DERIVED_MAX:
        _DERIVED.clear()
    derived = _Derived(table)
    _DERIVED[id(table)] = (table, derived)
    return derived


def shadow_of(table: TableDef, row: Mapping[str, object] | None) -> bytes:
    """The shadow of an adopted row: its declared columns as culvert_py indexed them.

    Kept after the version struct in the row's version cell, so that the entries of values
    another application has since overwritten can still be found (and removed). Each
    non-NULL, non-key column is ``(name, type, value)`` in the order-preserving encoding, in
    column-name order, so a shadow stays readable after the schema gains or loses columns.
    The name and type bytes are precomputed per definition; values are encoded unchecked,
    as they come from a codec's decoder or a write that checked them already (see
    :func:`culvert_py.encoding.unchecked_value_encoder`).
    """
    if not row:
        return b""
    parts = []
    for name, header, encode in _derived(table).shadow:
        value = row.get(name)
        if value is not None:
            parts.append(header)
            parts.append(encode(value))
    return b"".join(parts)


def decode_shadow(table: TableDef, data: bytes) -> dict[str, object]:
    """The row a shadow (the bytes after the version struct) remembers.

    Columns the schema no longer declares, or now declares with another type, are left out.
    """
    row: dict[str, object] = {}
    offset = 0
    while offset < len(data):
        name, offset = decode_value(data, "str", offset)
        typ, offset = decode_value(data, "str", offset)
        value, offset = decode_value(data, typ, offset)  # type: ignore[arg-type]
        if table.columns.get(name) == typ:  # type: ignore[arg-type]
            row[name] = value  # type: ignore[index]
    return row


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
