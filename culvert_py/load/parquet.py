"""Records of Parquet files or Arrow tables, one per row, typed for the table's columns.

The columns are checked before any row is read, like a CSV header: a column the table does
not have, a missing row-key column, a duplicate name or an Arrow type that can hold no value
of its column's type (a ``string`` column for an ``int``, a timestamp without a time zone
for a ``datetime``) raise :class:`~culvert_py.errors.LoadError`, since every row would be
bad. Then each row is typed on its own, and a bad one is a reject with a reason: a NULL
row-key column, an unsigned value beyond 64 bits, a timestamp outside ``datetime``'s range,
text in a ``datetime`` column without a UTC offset (text there is ISO-8601, and text in a
``bytes`` column is hex, as in JSON Lines), and the size limits of every load.

Arrow types each column type takes: ``int`` any integer; ``float`` any integer or floating
point; ``str`` string; ``bytes`` binary (any width) or hex text; ``bool`` boolean; ``datetime``
a zoned timestamp of any unit (nanoseconds are cut to the encoding's microseconds) or text.
The null type and dictionary-encoded columns of these are taken too. A reject's ``line`` is
the row's 1-based number in the file (or frame), its ``raw`` the row as a JSON object.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from culvert_py.encoding import check_value
from culvert_py.errors import EncodingError, LoadError
from culvert_py.frames import require
from culvert_py.load.fields import _json_value
from culvert_py.load.records import Record, Reject
from culvert_py.schema import TableDef

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Microseconds per tick of each timestamp unit (nanoseconds are divided instead).
_MICROS = {"s": 1_000_000, "ms": 1000, "us": 1, "ns": 1}
_RAW_LIMIT = 4096


class _Bad:
    """A value no column can take (a timestamp beyond ``datetime``): the row's reject."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class ArrowSource:
    """The rows of a Parquet file or an Arrow table, as records for the load job.

    :param table: the table definition
    :param data: a ``pyarrow.parquet.ParquetFile`` or a ``pyarrow.Table``
    :param where: names the input in messages (``'x.parquet'``)
    :raises LoadError: for columns that make every row bad (see :mod:`culvert_py.load.parquet`)
    """

    def __init__(self, table: TableDef, data: Any, where: str) -> None:
        self.pa = require()
        self.table = table
        self.data = data
        self.where = where
        schema = data.schema_arrow if hasattr(data, "schema_arrow") else data.schema
        self.total = data.metadata.num_rows if hasattr(data, "schema_arrow") else data.num_rows
        self.columns = _check_columns(self.pa, table, schema, where)

    def records(self, start: int, batch_size: int) -> Iterator[Record]:
        """The records from row ``start`` (0-based) on, read ``batch_size`` rows at a time.

        :raises LoadError: when the data cannot be read (a corrupt Parquet file)
        """
        number = start
        try:
            for batch in self._batches(start, batch_size):
                rows = batch.num_rows
                if not rows:
                    continue
                size = max(1, batch.nbytes // rows)
                values = [
                    _column_values(self.pa, batch.column(i)) for i in range(batch.num_columns)
                ]
                names = batch.schema.names
                for i in range(rows):
                    number += 1
                    raw = {n: v[i] for n, v in zip(names, values, strict=True)}
                    yield self._record(raw, number, size)
        except (OSError, self.pa.ArrowException) as exc:
            raise LoadError(f"cannot read {self.where} after row {number:,}: {exc}") from exc

    def _batches(self, start: int, batch_size: int) -> Iterator[Any]:
        if not hasattr(self.data, "schema_arrow"):
            yield from self.data.slice(start).to_batches(max_chunksize=batch_size)
            return
        metadata = self.data.metadata
        first, before = 0, 0
        while first < metadata.num_row_groups:
            rows = metadata.row_group(first).num_rows
            if before + rows > start:
                break
            before += rows
            first += 1
        groups = list(range(first, metadata.num_row_groups))
        if not groups:
            return
        skip = start - before
        for batch in self.data.iter_batches(batch_size=batch_size, row_groups=groups):
            if skip >= batch.num_rows:
                skip -= batch.num_rows
                continue
            yield batch.slice(skip) if skip else batch
            skip = 0

    def _record(self, raw: dict, number: int, size: int) -> Record:
        text = json.dumps({k: _shown(v) for k, v in raw.items()}, ensure_ascii=False)
        if len(text) > _RAW_LIMIT:
            text = text[: _RAW_LIMIT - 1] + "…"
        record = Record(line=number, last_line=number, end=number, raw=text, size=size)
        row: dict[str, object] = {}
        problems = []
        for name, value in raw.items():
            type_name = self.columns[name]
            try:
                row[name] = _typed(value, type_name, name)
            except Reject as exc:
                problems.append(str(exc))
        if problems:
            record.reason = "; ".join(problems)
        record.value = row
        return record


def _typed(value: object, type_name: str, column: str) -> object:
    if value is None:
        return None
    if isinstance(value, _Bad):
        raise Reject(f"column {column!r}: {value.reason}")
    if isinstance(value, str) and type_name in ("datetime", "bytes"):
        return _json_value(value, type_name, column)
    try:
        return check_value(value, type_name, column)
    except EncodingError as exc:
        raise Reject(str(exc)) from exc


def _shown(value: object) -> object:
    """A value as the rejects file shows it: JSON's types, bytes as hex, datetimes ISO."""
    if isinstance(value, _Bad):
        return value.reason
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _column_values(pa: Any, array: Any) -> list:
    """A column's values as Python objects; timestamps by hand, since pyarrow's own
    conversion fails the whole batch for one value beyond ``datetime``'s range."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = array.dictionary_decode()
        kind = array.type
    if not pa.types.is_timestamp(kind):
        return array.to_pylist()
    micros_per_tick = _MICROS[kind.unit]
    ticks = array.cast(pa.int64()).to_pylist()
    values: list = []
    for tick in ticks:
        if tick is None:
            values.append(None)
            continue
        micros = tick * micros_per_tick if kind.unit != "ns" else tick // 1000
        try:
            values.append(_EPOCH + timedelta(microseconds=micros))
        except OverflowError:
            values.append(_Bad(f"timestamp {tick} {kind.unit} since 1970 is outside datetime"))
    return values


def _accepts(pa: Any, kind: Any, type_name: str) -> bool:
    types = pa.types
    if types.is_dictionary(kind):
        kind = kind.value_type
    if types.is_null(kind):
        return True
    text = types.is_string(kind) or types.is_large_string(kind)
    if type_name == "int":
        return types.is_integer(kind)
    if type_name == "float":
        return types.is_integer(kind) or types.is_floating(kind)
    if type_name == "str":
        return text
    if type_name == "bytes":
        binary = types.is_binary(kind) or types.is_large_binary(kind)
        return binary or types.is_fixed_size_binary(kind) or text
    if type_name == "bool":
        return types.is_boolean(kind)
    return text or (types.is_timestamp(kind) and kind.tz is not None)


def _check_columns(pa: Any, table: TableDef, schema: Any, where: str) -> dict[str, str]:
    names = list(schema.names)
    known = table.columns
    unknown = [n for n in names if n not in known]
    if unknown:
        raise LoadError(
            f"{where}: unknown column(s) {', '.join(map(repr, unknown))} for table "
            f"{table.name!r} (known: {', '.join(known)})"
        )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise LoadError(f"{where}: duplicate column(s) {', '.join(map(repr, duplicates))}")
    missing = [c for c in table.row_key if c not in names]
    if missing:
        raise LoadError(
            f"{where}: row-key column(s) {', '.join(map(repr, missing))} missing; "
            f"the key of {table.name!r} is ({', '.join(table.row_key)})"
        )
    for name in names:
        kind = schema.field(name).type
        if not _accepts(pa, kind, known[name]):
            hint = (
                "; give it a time zone (e.g. pyarrow.compute.assume_timezone, or pandas "
                "tz_localize) rather than have it guessed"
                if pa.types.is_timestamp(kind)
                else ""
            )
            raise LoadError(
                f"{where}: column {name!r}: Arrow type {kind} cannot hold "
                f"{known[name]} values{hint}"
            )
    return {n: known[n] for n in names}
