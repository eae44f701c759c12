"""Validation of what an adopted table declares: its cells, codecs, row-key encoding.

An adopted table (``existing = true``, see ``docs/adopted-tables.md``) keeps the row keys
and cells its applications write. :func:`adopted_fields` checks its section of a schema file
and resolves the defaults (a column's cell is ``<family>:<column>``, its codec the first of
:data:`culvert_py.codecs.CODECS`), so :mod:`culvert_py.schema` stores them resolved.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from culvert_py.codecs import CODECS, ROW_KEY_CODECS
from culvert_py.errors import SchemaError

#: Table keys only an adopted table takes.
ADOPTED_KEYS = frozenset({"existing", "hbase_table", "row_key_codec", "row_key_delimiter"})
#: Qualifier of the version cell of an adopted table, in its ``family``: no column may use it.
ADOPTED_VERSION_QUALIFIER = "_culvert"
#: A column family name as HBase allows it (printable, no ':').
FAMILY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

_HBASE_TABLE = re.compile(r"^(?:[A-Za-z0-9_]+:)?[A-Za-z0-9_][A-Za-z0-9_.-]*$")
#: Row-key part types of a composite adopted key, rendered as text between delimiters.
_DELIMITED_TYPES = ("str", "int")
#: Column types each single-column row-key codec takes.
_ROW_KEY_TYPES = {"utf8": ("str", "int"), "raw": ("bytes",), "int32": ("int",), "int64": ("int",)}


def adopted_fields(
    name: str,
    spec: Mapping[str, Any],
    family: str,
    row_key: tuple[str, ...],
    columns: Mapping[str, str],
    columns_spec: Mapping[str, Any],
) -> dict[str, Any]:
    """The adopted-table fields of a ``TableDef``, validated.

    :param name: the table's name (the start of every message's path)
    :param spec: the table's section of the schema file
    :param family: the table's validated default family
    :param row_key: the validated row-key columns
    :param columns: ``{column: type}``, validated
    :param columns_spec: the ``columns`` section as written (a type, or a table with
        ``type``, ``cell`` and ``codec``)
    :return: keyword arguments of ``TableDef``: ``existing``, ``hbase_name``,
        ``row_key_codec``, ``row_key_delimiter``, ``cells``, ``codecs``
    :raises SchemaError: naming the dotted path of the offending key
    """
    hbase_name = spec.get("hbase_table")
    if hbase_name is not None and (
        not isinstance(hbase_name, str) or not _HBASE_TABLE.match(hbase_name)
    ):
        raise SchemaError(
            f"{name}.hbase_table: expected an HBase table name like 'users' or "
            f"'ns:users', got {hbase_name!r}"
        )
    if hbase_name == name:
        hbase_name = None  # one spelling of "the same name", so a re-read file compares equal
    codec, delimiter = _row_key_encoding(name, spec, row_key, columns)
    version_cell = f"{family}:{ADOPTED_VERSION_QUALIFIER}"
    cells: dict[str, str] = {}
    codecs: dict[str, str] = {}
    owners: dict[str, str] = {}
    for col, typ in columns.items():
        path = f"{name}.columns.{col}"
        options = columns_spec[col] if isinstance(columns_spec[col], Mapping) else {}
        if col in row_key:
            for key in sorted({"cell", "codec"} & set(options)):
                raise SchemaError(
                    f"{path}.{key}: a row-key column lives in the row key, not in a cell "
                    "(its encoding is the table's row_key_codec)"
                )
            continue
        cell = _cell(options.get("cell", col), family, f"{path}.cell")
        if cell == version_cell:
            raise SchemaError(f"{path}.cell: {cell!r} is culvert_py's version cell of the table")
        if cell in owners:
            raise SchemaError(f"{path}.cell: {cell!r} is already the cell of {owners[cell]!r}")
        owners[cell] = col
        known = CODECS[typ]
        chosen = options.get("codec", known[0])
        if chosen not in known:
            raise SchemaError(
                f"{path}.codec: {chosen!r} is not a codec of {typ} (known: {', '.join(known)})"
            )
        cells[col], codecs[col] = cell, chosen
    return {
        "existing": True,
        "hbase_name": hbase_name,
        "row_key_codec": codec,
        "row_key_delimiter": delimiter,
        "cells": cells,
        "codecs": codecs,
    }


def _row_key_encoding(
    name: str, spec: Mapping[str, Any], row_key: tuple[str, ...], columns: Mapping[str, str]
) -> tuple[str, str | None]:
    """``(row_key_codec, row_key_delimiter)`` of an adopted table, validated."""
    codec = spec.get("row_key_codec")
    delimiter = spec.get("row_key_delimiter")
    if codec is not None and codec not in ROW_KEY_CODECS:
        raise SchemaError(
            f"{name}.row_key_codec: unknown codec {codec!r} (known: {', '.join(ROW_KEY_CODECS)})"
        )
    if len(row_key) > 1:
        if codec not in (None, "utf8"):
            raise SchemaError(
                f"{name}.row_key_codec: a composite row key is delimited UTF-8 text; "
                f"{codec!r} takes one column"
            )
        if delimiter is None:
            raise SchemaError(
                f"{name}.row_key_delimiter: a composite row key of an adopted table needs "
                "the delimiter its parts are joined with, e.g. '#'"
            )
        if not isinstance(delimiter, str) or not delimiter:
            raise SchemaError(f"{name}.row_key_delimiter: expected a non-empty string")
        for col in row_key:
            if columns[col] not in _DELIMITED_TYPES:
                raise SchemaError(
                    f"{name}.row_key: part {col!r} is {columns[col]}; a delimited key's parts "
                    f"are {' or '.join(_DELIMITED_TYPES)} columns"
                )
        return "utf8", delimiter
    if delimiter is not None:
        raise SchemaError(
            f"{name}.row_key_delimiter: only a composite row key (several columns) is delimited"
        )
    typ = columns[row_key[0]]
    if codec is None:
        codec = "raw" if typ == "bytes" else "utf8"
    if typ not in _ROW_KEY_TYPES[codec]:
        raise SchemaError(
            f"{name}.row_key_codec: {codec!r} needs a {' or '.join(_ROW_KEY_TYPES[codec])} "
            f"row key column; {row_key[0]!r} is {typ}"
        )
    return codec, None


def _cell(value: Any, family: str, path: str) -> str:
    """A column's cell as ``family:qualifier`` (a bare qualifier is in ``family``)."""
    if not isinstance(value, str) or not value:
        raise SchemaError(f"{path}: expected 'family:qualifier' or a qualifier, got {value!r}")
    cell_family, colon, qualifier = value.partition(":")
    if not colon:
        return f"{family}:{value}"
    if not FAMILY.match(cell_family) or not qualifier:
        raise SchemaError(f"{path}: expected 'family:qualifier', got {value!r}")
    return value
