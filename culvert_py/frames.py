"""Arrow record batches of query answers, typed from the table's schema.

A column's Arrow type comes from its schema type, so an answer has the same schema whatever
rows it holds (an empty answer too):

=========  ==========================  =============================================
schema     Arrow                       pandas (:func:`to_pandas`)
=========  ==========================  =============================================
int        ``int64``                   ``Int64`` (nullable)
float      ``float64``                 ``Float64`` (nullable: NULL is ``<NA>``, NaN stays NaN)
str        ``string``                  pandas' string dtype
bytes      ``binary``                  ``object`` holding ``bytes``
bool       ``bool``                    ``boolean`` (nullable)
datetime   ``timestamp[us, tz=UTC]``   ``datetime64[us, UTC]``
=========  ==========================  =============================================

NULL is an Arrow null in every type, never a NaN or an empty value. Rows are turned into
columns ``batch_size`` rows at a time (:func:`iter_batches`): the row dicts of one batch are
all that is held besides the Arrow data, so a large answer never sits in memory twice.

pyarrow and pandas are the optional extra ``dataframe`` (``pip install
culvert_py[dataframe]``). They are imported when a function here first needs them, never
when culvert_py is imported; without them the call raises
:class:`~culvert_py.errors.MissingDependencyError` naming the extra.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from culvert_py.arguments import check_count
from culvert_py.errors import ArgumentError, LoadError, MissingDependencyError
from culvert_py.schema import TableDef

#: Rows per record batch unless told otherwise.
DEFAULT_BATCH_ROWS = 10_000

_EXTRA = "pip install culvert_py[dataframe]"


def require(module: str = "pyarrow") -> Any:
    """Import ``module`` (``pyarrow``, ``pyarrow.parquet`` or ``pandas``) of the extra.

    :param module: the module's import name
    :return: the module
    :raises MissingDependencyError: when it is not installed, naming the extra to install
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.partition(".")[0]
        raise MissingDependencyError(
            f"{top} is not installed; DataFrames and Parquet need the 'dataframe' extra: {_EXTRA}"
        ) from exc


def arrow_type(type_name: str) -> Any:
    """The Arrow type of a schema column type (see the table in :mod:`culvert_py.frames`).

    :param type_name: one of :data:`~culvert_py.values.COLUMN_TYPES`
    :raises ArgumentError: for an unknown type name
    """
    pa = require()
    types = {
        "int": pa.int64(),
        "float": pa.float64(),
        "str": pa.string(),
        "bytes": pa.binary(),
        "bool": pa.bool_(),
        "datetime": pa.timestamp("us", tz="UTC"),
    }
    try:
        return types[type_name]
    except KeyError as exc:
        raise ArgumentError(f"unknown column type {type_name!r}") from exc


def arrow_schema(table: TableDef, columns: Sequence[str] | None = None) -> Any:
    """The Arrow schema of ``table``'s rows, or of the given ``columns`` in their order.

    :param table: the table definition
    :param columns: the columns (default: every column, in schema order)
    :return: a ``pyarrow.Schema``; every field nullable
    :raises ArgumentError: for a column the table does not have
    """
    pa = require()
    names = list(table.columns) if columns is None else list(columns)
    unknown = [c for c in names if c not in table.columns]
    if unknown:
        raise ArgumentError(
            f"{table.name}: unknown column(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(table.columns)})"
        )
    return pa.schema([pa.field(c, arrow_type(table.columns[c])) for c in names])


def iter_batches(
    rows: Iterable[Mapping[str, object]], schema: Any, batch_size: int = DEFAULT_BATCH_ROWS
) -> Iterator[Any]:
    """Record batches of ``rows``, ``batch_size`` rows each (the last may be shorter).

    :param rows: row dicts (a column a dict lacks is NULL), consumed lazily
    :param schema: the batches' ``pyarrow.Schema`` (:func:`arrow_schema`)
    :param batch_size: rows per batch
    :return: an iterator of ``pyarrow.RecordBatch``; none for no rows
    :raises ArgumentError: for a ``batch_size`` below 1
    """
    check_count("query", "batch_size", batch_size, 1)
    pa = require()
    names = schema.names
    types = [schema.field(n).type for n in names]

    def batches() -> Iterator[Any]:
        columns: list[list] = [[] for _ in names]
        count = 0
        for row in rows:
            for values, name in zip(columns, names, strict=True):
                values.append(row.get(name))
            count += 1
            if count == batch_size:
                yield _batch(pa, columns, types, schema)
                columns = [[] for _ in names]
                count = 0
        if count:
            yield _batch(pa, columns, types, schema)

    return batches()


def _batch(pa: Any, columns: list[list], types: list, schema: Any) -> Any:
    arrays = [pa.array(v, type=t) for v, t in zip(columns, types, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def to_arrow(batches: Iterable[Any], schema: Any) -> Any:
    """One ``pyarrow.Table`` of ``batches`` (no copy of their buffers).

    :param batches: record batches of ``schema``
    :param schema: their schema, so that no batches still make a typed, empty table
    """
    return require().Table.from_batches(batches, schema=schema)


def to_pandas(table: Any) -> Any:
    """A ``pandas.DataFrame`` of an Arrow table, with the nullable dtypes of
    :mod:`culvert_py.frames`; the Arrow table is emptied column by column as it goes.

    :param table: a ``pyarrow.Table`` (as :func:`to_arrow` gives); not usable afterwards
    :return: the DataFrame, one column per field, in order
    """
    pa = require()
    pd = require("pandas")
    np = require("numpy")
    mapping = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    names = table.schema.names
    data = {}
    for name in names:
        column = table.column(name)
        if pa.types.is_floating(column.type):
            # pandas' own conversion turns NaN into <NA>; a float NaN is data, not NULL.
            values = column.to_numpy().astype(np.float64, copy=False)
            mask = column.is_null().to_numpy(zero_copy_only=False)
            data[name] = pd.arrays.FloatingArray(values.copy(), mask)
        else:
            data[name] = column.to_pandas(types_mapper=mapping.get)
        table = table.drop_columns([name])
    return pd.DataFrame(data, columns=names)


def arrow_table_of(data: Any, where: str) -> Any:
    """A pandas DataFrame or an Arrow table (or record batch) as a ``pyarrow.Table``.

    A DataFrame's named index levels become columns (``df.set_index("id")`` keeps ``id``); an
    unnamed index is dropped. In a plain ``float64`` column pandas marks missing values with
    NaN, so NaN there is NULL; a nullable ``Float64`` column keeps NaN and ``<NA>`` apart.

    :param data: a ``pandas.DataFrame``, ``pyarrow.Table`` or ``pyarrow.RecordBatch``
    :param where: names the call in messages
    :raises ArgumentError: for anything else
    :raises LoadError: for a DataFrame column Arrow cannot type (mixed ints and strings)
    """
    pa = require()
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__ or ""
    if module.startswith("pandas") and type(data).__name__ == "DataFrame":
        keep_index = any(name is not None for name in data.index.names)
        try:
            return pa.Table.from_pandas(data, preserve_index=keep_index)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            # A column Arrow cannot type (an object column mixing ints and strings): no row
            # of it can be loaded, so the load stops before it writes, as for a bad header.
            raise LoadError(f"{where}: cannot convert the DataFrame to Arrow: {exc}") from exc
    raise ArgumentError(
        f"{where}: expected a pandas DataFrame or a pyarrow Table, got "
        f"{type(data).__name__} {data!r:.60}"
    )


def write_parquet(batches: Iterable[Any], schema: Any, path: str | Path) -> int:
    """Write record batches to a Parquet file, one row group per batch or so.

    :param batches: record batches of ``schema``
    :param schema: the file's schema
    :param path: the file (replaced)
    :return: the number of rows written
    """
    pq = require("pyarrow.parquet")
    count = 0
    with pq.ParquetWriter(str(path), schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
            count += batch.num_rows
    return count
