"""Table definitions read from schema files, validated at the door, compared with the applied one.

A schema file is TOML (see ``schemas/culvert-schema.json`` for the format and
``schemas/examples/`` for examples)::

    [tables.people]
    family = "d"
    row_key = ["id"]
    salt_buckets = 8

    [tables.people.columns]
    id = "str"
    age = "int"

    [tables.people.indexes.by_age]
    kind = "range"
    columns = ["age"]
    include = ["name"]

An *adopted* table (``existing = true``, see ``docs/adopted-tables.md``) is one other
applications own: it declares where each column lives (``cell``) and how it is encoded
(``codec``, one of :data:`culvert_py.codecs.CODECS`), and how its row keys are written::

    [tables.users]
    existing = true
    family = "info"
    row_key = ["user_id"]
    row_key_codec = "utf8"

    [tables.users.columns]
    user_id = "str"
    age = { type = "int", cell = "info:age", codec = "int32" }

Every validation error names the file and the dotted path of the offending key, e.g.
``people.toml: people.indexes.by_age.columns: unknown column 'agee' (known: age, id)``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from culvert_py.adopted import ADOPTED_KEYS, FAMILY, adopted_fields
from culvert_py.encoding import COLUMN_TYPES
from culvert_py.errors import QueryError, SchemaError
from culvert_py.lifespan import Lifespan, lifespan_to_dict, parse_lifespan
from culvert_py.predicate import Expr, normalize, parse

INDEX_KINDS = ("term", "range", "text")
SALT_MODES = ("row", "value")
MAX_SALT_BUCKETS = 256  # the salt is one byte

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_TABLE_KEYS = {
    "family", "row_key", "salt_buckets", "primary_buckets", "columns", "indexes", "ttl", "age_off"
}
_COLUMN_KEYS = {"type", "cell", "codec"}
_INDEX_KEYS = {"kind", "columns", "include", "where", "salt", "buckets", "descending"}


@dataclass(frozen=True)
class IndexDef:
    """One secondary index of a table.

    :ivar kind: ``term`` (equality), ``range`` (ordered) or ``text`` (one entry per word)
    :ivar columns: indexed columns, leftmost first (a composite when more than one)
    :ivar include: covered columns stored in each entry
    :ivar where: a predicate (text syntax) rows must satisfy to be indexed: a partial index
    :ivar salt: ``row`` spreads entries by primary key; ``value`` by the first indexed value
    :ivar buckets: salt buckets, and so pre-split regions, of the index table
    :ivar descending: indexed columns stored in descending order
    """

    table: str
    name: str
    kind: str
    columns: tuple[str, ...]
    include: tuple[str, ...] = ()
    where: str | None = None
    salt: str = "row"
    buckets: int = 8
    descending: tuple[str, ...] = ()
    #: ``where`` parsed and normalised once, here: what the writer, the planner and verify
    #: evaluate (``None`` for a full index). Derived, so not part of equality.
    predicate: Expr | None = field(default=None, compare=False, repr=False)

    @property
    def hbase_table(self) -> str:
        """Name of the store table holding this index's entries."""
        return f"{self.table}.__idx.{self.name}"

    @property
    def path(self) -> str:
        """Dotted path used in messages: ``people.by_age``."""
        return f"{self.table}.{self.name}"

    def layout(self) -> dict[str, Any]:
        """The parts of the definition that decide the bytes of its entries."""
        return {
            "kind": self.kind,
            "columns": list(self.columns),
            "include": list(self.include),
            "where": self.where,
            "salt": self.salt,
            "buckets": self.buckets,
            "descending": list(self.descending),
        }


@dataclass(frozen=True)
class TableDef:
    """One primary table: its typed columns, row key and indexes.

    The fields after ``indexes`` describe an adopted table (``existing``) and keep their
    defaults on a native one, whose bytes :mod:`culvert_py.layout` alone decides.

    :ivar existing: an adopted table: an HBase table other applications write
    :ivar hbase_name: the adopted table's HBase name (``namespace:table``) when not ``name``
    :ivar row_key_codec: how an adopted single-column row key is written (one of
        :data:`~culvert_py.codecs.ROW_KEY_CODECS`; ``utf8`` for a composite key)
    :ivar row_key_delimiter: what separates the text parts of an adopted composite key
    :ivar cells: ``{column: "family:qualifier"}`` of an adopted table's non-key columns
    :ivar codecs: ``{column: codec name}`` of an adopted table's non-key columns
    :ivar lifespan: its ``ttl`` / ``age_off`` rules (:mod:`culvert_py.lifespan`), if any
    :ivar primary_buckets: salt buckets, and so pre-split regions, of a native table's
        primary table (1: unsalted keys, one region until HBase splits it)
    """

    name: str
    family: str
    row_key: tuple[str, ...]
    columns: Mapping[str, str]
    salt_buckets: int = 8
    indexes: Mapping[str, IndexDef] = field(default_factory=dict)
    existing: bool = False
    hbase_name: str | None = None
    row_key_codec: str | None = None
    row_key_delimiter: str | None = None
    cells: Mapping[str, str] = field(default_factory=dict)
    codecs: Mapping[str, str] = field(default_factory=dict)
    lifespan: Lifespan | None = None
    primary_buckets: int = 1

    @property
    def hbase_table(self) -> str:
        """Name of the store table holding the primary rows."""
        return self.hbase_name or self.name

    def column_type(self, column: str) -> str:
        """The type of ``column``.

        :raises SchemaError: for an unknown column, naming the known ones
        """
        try:
            return self.columns[column]
        except KeyError as exc:
            raise SchemaError(
                f"{self.name}: unknown column {column!r} (known: {', '.join(self.columns)})"
            ) from exc


@dataclass(frozen=True)
class Schema:
    """Every table of a schema file, by name."""

    tables: Mapping[str, TableDef]

    def table(self, name: str) -> TableDef:
        """The definition of table ``name``.

        :raises SchemaError: when the schema has no such table
        """
        try:
            return self.tables[name]
        except KeyError as exc:
            known = ", ".join(self.tables) or "none"
            raise SchemaError(f"unknown table {name!r} (known: {known})") from exc


def load_schema(path: str | Path) -> Schema:
    """Read and validate a TOML schema file.

    :param path: the file
    :return: the validated :class:`Schema`
    :raises SchemaError: when the file is unreadable, not TOML, or invalid; the message
        names the file and the dotted path of the offending key
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path}: cannot read schema file: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SchemaError(f"{path}: not valid TOML: {exc}") from exc
    return parse_schema(data, source=str(path))


def parse_schema(data: Mapping[str, Any], source: str = "<schema>") -> Schema:
    """Validate a schema given as a plain dict (the parsed TOML or stored JSON).

    :param data: ``{"tables": {name: {...}}}``
    :param source: what to call the origin in error messages (a file name)
    :return: the validated :class:`Schema`
    :raises SchemaError: naming ``source`` and the dotted path of the offending key
    """
    try:
        return _parse(data)
    except SchemaError as exc:
        raise SchemaError(f"{source}: {exc}") from exc


def schema_to_dict(schema: Schema) -> dict[str, Any]:
    """The plain-dict form of ``schema`` that :func:`parse_schema` reads back."""
    return {"tables": {t.name: _table_to_dict(t) for t in schema.tables.values()}}


def _table_to_dict(t: TableDef) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if t.existing:
        spec["existing"] = True
        if t.hbase_name is not None:
            spec["hbase_table"] = t.hbase_name
        spec["row_key_codec"] = t.row_key_codec
        if t.row_key_delimiter is not None:
            spec["row_key_delimiter"] = t.row_key_delimiter
    spec["family"] = t.family
    spec["row_key"] = list(t.row_key)
    spec["salt_buckets"] = t.salt_buckets
    if t.primary_buckets > 1:
        spec["primary_buckets"] = t.primary_buckets
    spec["columns"] = {
        c: {"type": typ, "cell": t.cells[c], "codec": t.codecs[c]} if c in t.cells else typ
        for c, typ in t.columns.items()
    }
    spec["indexes"] = {
        i.name: {k: v for k, v in i.layout().items() if v not in (None, [])}
        for i in t.indexes.values()
    }
    spec.update(lifespan_to_dict(t.lifespan))
    return spec


def schema_to_json(schema: Schema) -> str:
    """JSON of ``schema`` as stored in the meta table (declaration order kept: it is the
    column order rows are shown in)."""
    return json.dumps(schema_to_dict(schema), separators=(",", ":"))


def plan_changes(applied: Schema | None, new: Schema) -> dict[str, list]:
    """Compare a new schema with the applied one and list what applying it would do.

    Adding tables, columns and indexes is allowed; anything that would reinterpret stored
    bytes is refused: changing a column's type, the row key, the family, the salt buckets,
    or an index's definition in place (drop it and add it under a new name instead).
    Removing a column or an index from a table the file describes is refused too: the data
    stays, so the schema must keep describing it (``culvert index drop`` removes an index).
    Tables the file does not mention are left alone (see :func:`merge_schemas`).

    :return: ``{"new_tables": [TableDef], "new_indexes": [IndexDef], "new_columns": [(table,
        column)]}``
    :raises SchemaError: listing the first incompatible change, by dotted path
    """
    changes: dict[str, list] = {"new_tables": [], "new_indexes": [], "new_columns": []}
    old_tables = applied.tables if applied else {}
    for name, table in new.tables.items():
        old = old_tables.get(name)
        if old is None:
            changes["new_tables"].append(table)
            continue
        for attr, key in _FIXED_ATTRS:
            if getattr(old, attr) != getattr(table, attr):
                raise SchemaError(
                    f"{name}.{key}: cannot change {getattr(old, attr)!r} to "
                    f"{getattr(table, attr)!r} on an applied table (stored keys depend on it)"
                )
        for col, typ in old.columns.items():
            if col not in table.columns:
                raise SchemaError(f"{name}.columns.{col}: cannot remove an applied column")
            if table.columns[col] != typ:
                raise SchemaError(
                    f"{name}.columns.{col}: cannot change type {typ!r} to "
                    f"{table.columns[col]!r} on an applied table (stored values would be misread)"
                )
            for key, was, now in (
                ("cell", old.cells.get(col), table.cells.get(col)),
                ("codec", old.codecs.get(col), table.codecs.get(col)),
            ):
                if was != now:
                    raise SchemaError(
                        f"{name}.columns.{col}.{key}: cannot change {was!r} to {now!r} on an "
                        "applied table (stored values would be misread)"
                    )
        changes["new_columns"] += [(name, c) for c in table.columns if c not in old.columns]
        for iname, index in table.indexes.items():
            before = old.indexes.get(iname)
            if before is None:
                changes["new_indexes"].append(index)
            elif before.layout() != index.layout():
                raise SchemaError(
                    f"{name}.indexes.{iname}: cannot change an applied index in place; "
                    "add it under a new name and drop the old one"
                )
        for iname in old.indexes:
            if iname not in table.indexes:
                raise SchemaError(
                    f"{name}.indexes.{iname}: removed from the schema file; drop it with "
                    f"`culvert index drop {name} {iname}` instead"
                )
    return changes


#: Table attributes an applied table keeps, by the schema-file key that sets them.
_FIXED_ATTRS = (
    ("family", "family"),
    ("row_key", "row_key"),
    ("salt_buckets", "salt_buckets"),
    ("primary_buckets", "primary_buckets"),
    ("existing", "existing"),
    ("hbase_name", "hbase_table"),
    ("row_key_codec", "row_key_codec"),
    ("row_key_delimiter", "row_key_delimiter"),
)


def merge_schemas(applied: Schema | None, new: Schema) -> Schema:
    """The schema after applying ``new`` on top of ``applied``: tables ``new`` does not
    mention are kept as they are (one store can serve several schema files; a table is
    removed only by an explicit drop)."""
    tables = dict(applied.tables) if applied else {}
    tables.update(new.tables)
    return Schema(tables)


# -- validation -----------------------------------------------------------------------


def _parse(data: Mapping[str, Any]) -> Schema:
    if not isinstance(data, Mapping):
        raise SchemaError(f"expected a table of tables, got {type(data).__name__}")
    _unknown_keys(data, {"tables"}, "top level")
    tables = data.get("tables")
    if not isinstance(tables, Mapping) or not tables:
        raise SchemaError("tables: at least one [tables.NAME] section is required")
    parsed = {name: _parse_table(name, spec) for name, spec in tables.items()}
    owners: dict[str, str] = {}
    for table in parsed.values():
        other = owners.setdefault(table.hbase_table, table.name)
        if other != table.name:
            raise SchemaError(
                f"{table.name}.hbase_table: HBase table {table.hbase_table!r} is already "
                f"table {other!r}"
            )
    return Schema(parsed)


def _parse_table(name: str, spec: Any) -> TableDef:
    _check_name(name, f"tables.{name}")
    if not isinstance(spec, Mapping):
        raise SchemaError(f"{name}: expected a table, got {type(spec).__name__}")
    _unknown_keys(spec, _TABLE_KEYS | ADOPTED_KEYS, name)
    existing = spec.get("existing", False)
    if not isinstance(existing, bool):
        raise SchemaError(f"{name}.existing: expected true or false, got {existing!r}")
    if not existing:
        for key in sorted(ADOPTED_KEYS & set(spec)):
            if key != "existing":
                raise SchemaError(
                    f"{name}.{key}: only an adopted table (existing = true) takes {key}; "
                    "a native table's name, keys and cells are culvert_py's own"
                )
    family = spec.get("family", "d")
    if not isinstance(family, str) or not (FAMILY if existing else _NAME).match(family):
        raise SchemaError(f"{name}.family: expected a name like 'd', got {family!r}")
    columns_spec = spec.get("columns")
    if not isinstance(columns_spec, Mapping) or not columns_spec:
        raise SchemaError(f"{name}.columns: at least one column is required")
    columns = {col: _column_type(name, col, c) for col, c in columns_spec.items()}
    row_key = _column_list(spec.get("row_key"), columns, f"{name}.row_key", required=True)
    buckets = _buckets(spec.get("salt_buckets", 8), f"{name}.salt_buckets")
    # Salting the primary key rewrites the row keys: never of another application's table.
    primary = _buckets(spec.get("primary_buckets", 1), f"{name}.primary_buckets")
    if existing and "primary_buckets" in spec:
        raise SchemaError(
            f"{name}.primary_buckets: an adopted table (existing = true) keeps its own row "
            "keys and regions"
        )
    indexes_spec = spec.get("indexes", {})
    if not isinstance(indexes_spec, Mapping):
        raise SchemaError(f"{name}.indexes: expected a table of indexes")
    adopted: dict[str, Any] = {}
    if existing:
        adopted = adopted_fields(name, spec, family, row_key, columns, columns_spec)
    else:
        for col, c in columns_spec.items():
            for key in sorted({"cell", "codec"} & set(c if isinstance(c, Mapping) else ())):
                raise SchemaError(
                    f"{name}.columns.{col}.{key}: only an adopted table (existing = true) "
                    f"declares a column's {key}"
                )
    adopted["lifespan"] = parse_lifespan(name, spec, columns, existing)
    table = TableDef(name, family, row_key, columns, buckets, {}, **adopted)
    indexes = {iname: _parse_index(table, iname, ispec) for iname, ispec in indexes_spec.items()}
    return TableDef(
        name, family, row_key, columns, buckets, indexes, **adopted, primary_buckets=primary
    )


def _column_type(table: str, col: str, spec: Any) -> str:
    path = f"{table}.columns.{col}"
    _check_name(col, path)
    typ = spec
    if isinstance(spec, Mapping):
        _unknown_keys(spec, _COLUMN_KEYS, path)
        typ = spec.get("type")
        path += ".type"
    if typ not in COLUMN_TYPES:
        raise SchemaError(
            f"{path}: unknown type {typ!r} (known: {', '.join(sorted(COLUMN_TYPES))})"
        )
    return typ


def _parse_index(table: TableDef, name: str, spec: Any) -> IndexDef:
    path = f"{table.name}.indexes.{name}"
    _check_name(name, path)
    if not isinstance(spec, Mapping):
        raise SchemaError(f"{path}: expected a table, got {type(spec).__name__}")
    _unknown_keys(spec, _INDEX_KEYS, path)
    kind = spec.get("kind")
    if kind not in INDEX_KINDS:
        raise SchemaError(f"{path}.kind: unknown kind {kind!r} (known: {', '.join(INDEX_KINDS)})")
    columns = _column_list(spec.get("columns"), table.columns, f"{path}.columns", required=True)
    if kind == "text" and (len(columns) != 1 or table.columns[columns[0]] != "str"):
        raise SchemaError(f"{path}.columns: a text index takes exactly one str column")
    include = _column_list(spec.get("include", []), table.columns, f"{path}.include")
    overlap = sorted(set(include) & set(columns))
    if overlap:
        raise SchemaError(f"{path}.include: {overlap[0]!r} is already an indexed column")
    descending = _column_list(spec.get("descending", []), table.columns, f"{path}.descending")
    if descending and kind != "range":
        # Only a range index is read in order; a term or text index has no order to flip.
        raise SchemaError(
            f"{path}.descending: a {kind} index has no order; descending needs kind = 'range'"
        )
    stray = [c for c in descending if c not in columns]
    if stray:
        raise SchemaError(f"{path}.descending: {stray[0]!r} is not an indexed column")
    salt = spec.get("salt", "row")
    if salt not in SALT_MODES:
        raise SchemaError(f"{path}.salt: expected one of {', '.join(SALT_MODES)}, got {salt!r}")
    buckets = _buckets(spec.get("buckets", table.salt_buckets), f"{path}.buckets")
    where = spec.get("where")
    predicate = None
    if where is not None:
        if not isinstance(where, str) or not where.strip():
            raise SchemaError(f"{path}.where: expected a predicate string, got {where!r}")
        predicate = _compile_where(where, table, path)
    return IndexDef(
        table.name, name, kind, columns, include, where, salt, buckets, descending, predicate
    )


def _compile_where(where: str, table: TableDef, path: str) -> Expr:
    try:
        return normalize(parse(where, dict(table.columns)))
    except QueryError as exc:
        raise SchemaError(f"{path}.where: {exc}") from exc


def _column_list(value: Any, columns: Mapping[str, str], path: str, required=False) -> tuple:
    if value is None or value == []:
        if required:
            raise SchemaError(f"{path}: at least one column is required")
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SchemaError(f"{path}: expected a list of column names, got {value!r}")
    seen: set[str] = set()
    for col in value:
        if col not in columns:
            raise SchemaError(f"{path}: unknown column {col!r} (known: {', '.join(columns)})")
        if col in seen:
            raise SchemaError(f"{path}: duplicate column {col!r}")
        seen.add(col)
    return tuple(value)


def _buckets(value: Any, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SALT_BUCKETS:
        raise SchemaError(
            f"{path}: expected an integer from 1 to {MAX_SALT_BUCKETS}, got {value!r}"
        )
    return value


def _check_name(name: Any, path: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise SchemaError(f"{path}: invalid name {name!r} (a letter, then letters, digits or '_')")


def _unknown_keys(spec: Mapping[str, Any], known: set[str], path: str) -> None:
    for key in spec:
        if key not in known:
            raise SchemaError(f"{path}: unknown key {key!r} (known: {', '.join(sorted(known))})")
