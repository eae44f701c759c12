"""Spark rows typed into culvert rows by the table's schema, one reason per bad row.

A DataFrame column of the matching Spark type passes its values through the column's
check (:func:`~culvert_py.values.check_value`); a string column is parsed by the CSV rules
of :mod:`culvert_py.load` (``"42"`` for an int, ``"2024-01-01T00:00:00Z"`` for a datetime),
so a DataFrame read from text files loads as ``culvert load`` would load the files. Spark
hands ``TimestampType`` values to Python as naive local times; they are turned into aware
UTC datetimes, the one form culvert stores.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from culvert_py.errors import EncodingError, SchemaError
from culvert_py.load.fields import Rows, csv_value
from culvert_py.load.records import Reject
from culvert_py.schema import TableDef
from culvert_py.values import check_value

#: Spark SQL type of each culvert column type (``read`` builds DataFrames with these).
SPARK_TYPES = {
    "int": "long",
    "float": "double",
    "str": "string",
    "bytes": "binary",
    "bool": "boolean",
    "datetime": "timestamp",
}
#: Spark types a column of each culvert type accepts besides ``string`` (parsed as text).
_ACCEPTED = {
    "int": {"long", "int", "smallint", "tinyint", "bigint"},
    "float": {"double", "float", "long", "int", "smallint", "tinyint", "bigint"},
    "str": {"string"},
    "bytes": {"binary"},
    "bool": {"boolean"},
    "datetime": {"timestamp"},
}


def spark_schema(table: TableDef, columns: list[str]) -> str:
    """The DDL schema string of a DataFrame of ``columns`` of ``table``."""
    return ", ".join(f"`{c}` {SPARK_TYPES[table.columns[c]]}" for c in columns)


class RowTyper:
    """Turns Spark rows (as dicts) into checked culvert rows; raises :class:`Reject`.

    :param table: the table definition, as the driver read it
    :param fields: ``[(column, Spark simple type name)]`` of the DataFrame
    :raises SchemaError: for a column the table lacks, a missing row-key column, or a
        column whose Spark type cannot hold the column's values (every row would fail)
    """

    def __init__(self, table: TableDef, fields: list[tuple[str, str]]) -> None:
        self.table = table
        known = table.columns
        unknown = [name for name, _ in fields if name not in known]
        if unknown:
            raise SchemaError(
                f"{table.name}: DataFrame column(s) {', '.join(map(repr, unknown))} not in "
                f"the table (known: {', '.join(known)})"
            )
        names = [name for name, _ in fields]
        missing = [c for c in table.row_key if c not in names]
        if missing:
            raise SchemaError(
                f"{table.name}: DataFrame lacks row-key column(s) {', '.join(map(repr, missing))}"
            )
        for name, spark_type in fields:
            wanted = known[name]
            if spark_type != "string" and spark_type not in _ACCEPTED[wanted]:
                raise SchemaError(
                    f"{table.name}.{name}: DataFrame column of Spark type {spark_type} cannot "
                    f"hold {wanted} values (use {SPARK_TYPES[wanted]} or string)"
                )
        self.fields = [(name, known[name], spark_type) for name, spark_type in fields]
        self._rows = Rows(table, None)

    def row(self, values: dict) -> tuple[bytes, dict]:
        """``(primary key, typed row)`` of one Spark row.

        :raises Reject: naming every bad column, a NULL or missing key, an oversized key
        """
        row: dict[str, object] = {}
        problems = []
        for name, type_name, spark_type in self.fields:
            value = values.get(name)
            try:
                row[name] = self._value(value, name, type_name, spark_type)
            except Reject as exc:
                problems.append(str(exc))
            except EncodingError as exc:
                problems.append(str(exc))
        if problems:
            raise Reject("; ".join(problems))
        try:
            return self._rows.check(row), row
        except EncodingError as exc:
            raise Reject(str(exc)) from exc

    @staticmethod
    def _value(value: object, name: str, type_name: str, spark_type: str) -> object:
        if value is None:
            return None
        if spark_type == "string" and type_name != "str":
            return csv_value(value, type_name, name)  # type: ignore[arg-type]
        if type_name == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif type_name == "bytes" and isinstance(value, bytearray):
            value = bytes(value)
        elif type_name == "datetime" and isinstance(value, datetime) and value.tzinfo is None:
            value = value.astimezone(UTC)  # Spark's naive local time, see above
        return check_value(value, type_name, name)


def reject_text(values: dict) -> str:
    """A bad row as one line of JSON (values that JSON lacks as their text)."""
    return json.dumps(
        {k: v.hex() if isinstance(v, bytes | bytearray) else v for k, v in values.items()},
        default=str,
        ensure_ascii=False,
    )
