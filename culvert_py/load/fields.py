"""Typed rows from the fields of parsed records, by the rules of each column type.

CSV text is parsed per column type (int, float, str, bytes as hex, bool, aware datetime;
see :mod:`culvert_py.load` for the forms), an unquoted field may be NULL (``null_token``, or
the empty field), a quoted one never is. JSON values keep their JSON types, checked by
:func:`~culvert_py.encoding.check_value`; datetime and bytes come as strings in the CSV
forms, and a float column also takes the strings ``"nan"``, ``"inf"``, ``"-inf"``. A bad
value raises :class:`~culvert_py.load.records.Reject` naming the column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from culvert_py.encoding import check_value, encode_value
from culvert_py.errors import ArgumentError, EncodingError, LoadError
from culvert_py.layout import MAX_KEY_BYTES, IndexKeys, primary_key
from culvert_py.load.records import Quoted, Record, Reject
from culvert_py.schema import TableDef

#: Largest encoded cell accepted. HBase's own limit (``hbase.client.keyvalue.maxsize``, 10 MiB
#: by default) is higher, but cells this big already make region flushes, compactions and
#: scanner batches slow, so the loader rejects them rather than storing them.
MAX_CELL_BYTES = 1 << 20

_REPR_LIMIT = 60
_INT = re.compile(r"[+-]?[0-9]+")
_BOOLS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
_BOOL_FORMS = "true/false/1/0/yes/no"
#: Strings a JSON float field may hold: JSON has no literal for these values.
_NON_FINITE = frozenset({"nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity"})
#: Characters an unquoted CSV field cannot hold, so a null token must not either.
_UNQUOTABLE = frozenset(',"\r\n')
#: Column types with an empty value, which an empty CSV field means when NULL has a token.
_EMPTY_TYPES = frozenset({"str", "bytes"})


def check_null_token(null_token: object) -> str | None:
    """The CSV null token to use: ``None`` for none (``""`` means none too).

    :raises ArgumentError: for a token that is not text, or holds a comma, quote or line break
    """
    if null_token is None or null_token == "":
        return None
    if not isinstance(null_token, str) or _UNQUOTABLE & set(null_token):
        raise ArgumentError(
            f"null token {null_token!r}: expected text without commas, quotes or line breaks "
            "(no unquoted CSV field can hold them)"
        )
    return null_token


def parse_key(table: TableDef, text: str) -> object:
    """Parse a row key given as text (a CLI argument) into the value(s) the table's key takes.

    A one-column key is the text typed like a CSV field (``42`` for an int key); a composite
    key is a JSON array with one element per key column, typed like JSON Lines values
    (``'["AA", 11, "2013-01-01T05:00:00Z"]'``).

    :param table: the table definition
    :param text: the key text
    :return: a scalar for a one-column key, else a tuple
    :raises EncodingError: when the text does not fit the key's columns
    """
    columns = table.row_key
    if len(columns) == 1:
        name = columns[0]
        try:
            return csv_value(text, table.columns[name], name)
        except Reject as exc:
            raise EncodingError(f"{table.name}: key {text!r}: {exc}") from exc
    try:
        parts = json.loads(text)
    except ValueError:
        parts = None
    if not isinstance(parts, list) or len(parts) != len(columns):
        raise EncodingError(
            f"{table.name}: key {text!r}: expected a JSON array of {len(columns)} values "
            f"({', '.join(columns)})"
        )
    try:
        return tuple(
            _json_value(v, table.columns[c], c) for c, v in zip(columns, parts, strict=True)
        )
    except Reject as exc:
        raise EncodingError(f"{table.name}: key {text!r}: {exc}") from exc


class Rows:
    """Turns parsed records into checked row dicts; one reason per bad row.

    :param table: the table definition
    :param null_token: unquoted CSV text that means NULL (``None``: the empty field)
    """

    def __init__(self, table: TableDef, null_token: str | None) -> None:
        self.table = table
        self.null_token = null_token
        self.header: list[tuple[str, str]] = []
        # Only term/range entries carry values in their keys; text tokens are bounded by
        # the tokenizer, so their keys cannot get near the limit.
        self.keyed = [IndexKeys(table, i) for i in table.indexes.values() if i.kind != "text"]

    def set_header(self, record: Record, path: Path) -> None:
        """Check the CSV header and remember its columns.

        :raises LoadError: for a bad header: every row would be rejected, so nothing loads
        """
        where = f"{str(path)!r} line {record.line} (header)"
        if record.reason:
            raise LoadError(f"{where}: {record.reason}")
        names = [name.strip() for name in record.value]
        known = self.table.columns
        unknown = [n for n in names if n not in known]
        if unknown:
            raise LoadError(
                f"{where}: unknown column(s) {', '.join(map(repr, unknown))} for table "
                f"{self.table.name!r} (known: {', '.join(known)})"
            )
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise LoadError(f"{where}: duplicate column(s) {', '.join(map(repr, duplicates))}")
        missing = [c for c in self.table.row_key if c not in names]
        if missing:
            raise LoadError(
                f"{where}: row-key column(s) {', '.join(map(repr, missing))} missing; "
                f"the key of {self.table.name!r} is ({', '.join(self.table.row_key)})"
            )
        self.header = [(n, known[n]) for n in names]

    def from_csv(self, fields: list[str]) -> dict[str, object]:
        """The typed row of a CSV record's fields (NULLs included as ``None``).

        :raises Reject: for the wrong number of fields or any bad value (all named)
        """
        if len(fields) != len(self.header):
            raise Reject(
                f"malformed CSV: expected {len(self.header)} fields (as the header), "
                f"got {len(fields)}"
            )
        row: dict[str, object] = {}
        problems = []
        for (name, type_name), text in zip(self.header, fields, strict=True):
            if not isinstance(text, Quoted) and (
                text == self.null_token
                or (text == "" and (self.null_token is None or type_name not in _EMPTY_TYPES))
            ):
                row[name] = None
                continue
            try:
                row[name] = csv_value(text, type_name, name)
            except Reject as exc:
                problems.append(str(exc))
        if problems:
            raise Reject("; ".join(problems))
        return row

    def from_json(self, value: object) -> dict[str, object]:
        """The typed row of a JSON Lines record's value.

        :raises Reject: for a value that is not an object, an unknown key, any bad value
        """
        if not isinstance(value, dict):
            raise Reject(f"expected a JSON object, got {type(value).__name__} {_short(value)}")
        known = self.table.columns
        unknown = [k for k in value if k not in known]
        if unknown:
            raise Reject(
                f"unknown column(s) {', '.join(map(repr, unknown))} (known: {', '.join(known)})"
            )
        row: dict[str, object] = {}
        problems = []
        for name, item in value.items():
            try:
                row[name] = _json_value(item, known[name], name)
            except Reject as exc:
                problems.append(str(exc))
        if problems:
            raise Reject("; ".join(problems))
        return row

    def check(self, row: Mapping[str, object]) -> bytes:
        """Check the row key and sizes of a typed row; return its primary key.

        :raises Reject: for a missing or NULL row-key column, an oversize cell
        :raises EncodingError: for a primary or index-entry key beyond
            :data:`~culvert_py.layout.MAX_KEY_BYTES` (from :mod:`culvert_py.layout`)
        """
        for column in self.table.row_key:
            if column not in row:
                raise Reject(f"row-key column {column!r} is missing")
            if row[column] is None:
                raise Reject(f"row-key column {column!r} is NULL")
        # An encoded str takes at most 4 bytes per character, doubled by NUL escapes, plus
        # header and terminator: rows under the bounds below skip the exact (costly) checks.
        bound = 1
        for name, value in row.items():
            if isinstance(value, str | bytes):
                worst = 8 * len(value) + 3
                if worst > MAX_CELL_BYTES:
                    size = len(encode_value(value, self.table.columns[name]))
                    if size > MAX_CELL_BYTES:
                        raise Reject(
                            f"column {name!r}: value takes {size:,} bytes encoded, more than "
                            f"the {MAX_CELL_BYTES:,} allowed (MAX_CELL_BYTES)"
                        )
                bound += worst
            else:
                bound += 10
        pk = primary_key(self.table, row)
        # An entry key is at most the indexed values plus the primary key: only a row that
        # could pass the limit pays for building its entry keys, which check the limit.
        if 2 * bound > MAX_KEY_BYTES:
            for keys in self.keyed:
                keys.entry_keys(row, pk)
        return pk


# --------------------------------------------------------------------------- values


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 4] + "…" + text[-1]


def _expected(kind: str, text: str) -> Reject:
    return Reject(f"expected {kind}, got {_short(text)}")


def _parse_int(text: str) -> int:
    stripped = text.strip()
    if not _INT.fullmatch(stripped):
        raise _expected("int", text)
    return int(stripped)


def _parse_float(text: str) -> float:
    # float() also reads "1_000"; int fields refuse underscores, so floats do too.
    try:
        if "_" in text:
            raise ValueError
        return float(text)
    except ValueError as exc:
        raise _expected("float", text) from exc


def _parse_bytes(text: str) -> bytes:
    stripped = text.strip()
    if stripped[:2] in ("\\x", "0x", "0X"):
        stripped = stripped[2:]
    try:
        return bytes.fromhex(stripped)
    except ValueError as exc:
        raise _expected("hex bytes (e.g. 0x00ff)", text) from exc


def _parse_bool(text: str) -> bool:
    try:
        return _BOOLS[text.strip().lower()]
    except KeyError as exc:
        raise _expected(f"bool ({_BOOL_FORMS})", text) from exc


def _parse_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise _expected("ISO-8601 datetime (e.g. 2024-05-01T10:00:00Z)", text) from exc
    if value.utcoffset() is None:
        raise Reject(
            f"datetime {_short(text)} has no UTC offset; add one, e.g. 'Z' or '+02:00' "
            "(naive datetimes are rejected rather than guessed)"
        )
    return value


_TEXT_PARSERS: dict[str, Callable[[str], object]] = {
    "int": _parse_int,
    "float": _parse_float,
    "str": str,
    "bytes": _parse_bytes,
    "bool": _parse_bool,
    "datetime": _parse_datetime,
}


def csv_value(text: str, type_name: str, column: str) -> object:
    """A CSV field typed for its column (not NULL: the caller handles those)."""
    try:
        return check_value(_TEXT_PARSERS[type_name](text), type_name, column)
    except Reject as exc:
        raise Reject(f"column {column!r}: {exc}") from exc
    except EncodingError as exc:
        raise Reject(str(exc)) from exc


def _non_finite(text: str) -> float:
    """NaN or an infinity given as a JSON string (``"nan"``, ``"inf"``, ``"-inf"``, also
    ``"Infinity"``, any case), as ``culvert query --format jsonl`` writes them; finite numbers
    must be JSON numbers."""
    if text.strip().lower() not in _NON_FINITE:
        raise Reject(f'expected a JSON number or "nan", "inf", "-inf", got {_short(text)}')
    return float(text)


def _json_value(value: object, type_name: str, column: str) -> object:
    """A JSON value checked for its column; datetimes and bytes come as strings, and
    non-finite floats may."""
    try:
        if value is not None and type_name in ("datetime", "bytes"):
            if not isinstance(value, str):
                raise Reject(f"expected a {type_name} string, got JSON {_short(value)}")
            value = _TEXT_PARSERS[type_name](value)
        elif type_name == "float" and isinstance(value, str):
            value = _non_finite(value)
        return check_value(value, type_name, column)
    except Reject as exc:
        raise Reject(f"column {column!r}: {exc}") from exc
    except EncodingError as exc:
        raise Reject(str(exc)) from exc
