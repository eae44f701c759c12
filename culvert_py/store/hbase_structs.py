"""The storage contract's values as the Thrift structs of either gateway, in both directions.

Arguments are checked here, through :mod:`culvert_py.store.base`, as they are translated, so a
malformed row, column or value fails before any call is made.
"""

from __future__ import annotations

from collections.abc import Sequence

from culvert_py.store.base import RowMutation, check_put, check_row, normalise_column
from culvert_py.store.gateway import thrift1, thrift2


def thrift_columns(columns: Sequence[bytes] | None) -> list[bytes] | None:
    """Columns as Thrift1 wants them: ``b"f:q"``, or ``b"f"`` for a whole family.

    :raises ArgumentError: for a column naming no family
    """
    # Thrift1 reads b"f:" as family f with an EMPTY qualifier; a whole family is b"f".
    if columns is None:
        return None
    normalised = (normalise_column(c) for c in columns)
    return [c.rstrip(b":") if c.endswith(b":") else c for c in normalised]


def filter_bytes(flt: str | bytes | None) -> bytes | None:
    """A filter-language string as the bytes the gateway parses (``None`` for no filter)."""
    # Filter strings carry encoded values, which are arbitrary bytes: kept as bytes end to end.
    if not flt:
        return None
    return flt if isinstance(flt, bytes) else flt.encode()


def batch_mutation(m: RowMutation, table: str):
    """One row's puts and deletes as a Thrift1 ``BatchMutation`` (for ``mutateRowsTs``).

    :raises ArgumentError: for an empty or non-bytes row key, a put column without a
        qualifier, or a value that is not bytes
    """
    check_row(m.row, table)
    mutation = thrift1.Mutation
    muts = (
        [mutation(isDelete=True, column=col, writeToWAL=True) for col in thrift_columns(m.deletes)]
        if m.deletes
        else []
    )
    for col, value in m.puts.items():
        plain = type(col) is type(value) is bytes and b":" in col[1:-1]
        if not (plain and col[0] != 58 != col[-1]):  # 58 is ":"
            col = check_put(col, value, table)  # not certainly well-formed: the full check
        muts.append(mutation(False, col, value, True))  # isDelete, column, value, writeToWAL
    return thrift1.BatchMutation(row=m.row, mutations=muts)


def scan_spec(
    start: bytes,
    stop: bytes | None,
    columns,
    batch_size: int,
    flt: bytes | None,
    max_timestamp: int | None = None,
):
    """A Thrift1 ``TScan`` from ``start`` (inclusive) to ``stop`` (exclusive), of the cells
    with timestamps below ``max_timestamp`` (``None``: all)."""
    # Thrift1's only time bound: the gateway turns it into setTimeRange(0, timestamp).
    return thrift1.TScan(
        startRow=start,
        stopRow=stop,
        timestamp=max_timestamp,
        columns=columns,
        caching=batch_size,
        filterString=flt,
        sortColumns=False,
    )


def cells(result, include_timestamp: bool) -> dict:
    """The cells of a Thrift1 ``TRowResult``: ``{column: value}`` or ``(value, timestamp)``."""
    if include_timestamp:
        return {col: (cell.value, cell.timestamp) for col, cell in result.columns.items()}
    return {col: cell.value for col, cell in result.columns.items()}


def thrift2_columns(columns: Sequence[bytes] | None) -> list | None:
    """Columns as Thrift2 ``TColumn`` structs: a family alone for ``b"f:"`` or ``b"f"``.

    :raises ArgumentError: for a column naming no family
    """
    if columns is None:
        return None
    out = []
    for col in columns:
        family, _, qualifier = normalise_column(col).partition(b":")
        out.append(thrift2.TColumn(family=family, qualifier=qualifier or None))
    return out


def thrift2_scan_spec(
    start: bytes,
    stop: bytes | None,
    columns: list | None,
    batch_size: int,
    flt: bytes | None,
    time_range: tuple[int, int] | None,
):
    """A Thrift2 ``TScan`` from ``start`` (inclusive) to ``stop`` (exclusive), of the newest
    version of each cell with ``min <= timestamp < max`` (``time_range=None``: all)."""
    return thrift2.TScan(
        startRow=start,
        stopRow=stop,
        columns=columns,
        caching=batch_size,
        maxVersions=1,
        timeRange=thrift2.TTimeRange(*time_range) if time_range is not None else None,
        filterString=flt,
    )


def thrift2_cells(result, include_timestamp: bool) -> dict:
    """The cells of a Thrift2 ``TResult``, as :func:`cells` gives a Thrift1 row's."""
    if include_timestamp:
        return {
            cv.family + b":" + cv.qualifier: (cv.value, cv.timestamp) for cv in result.columnValues
        }
    return {cv.family + b":" + cv.qualifier: cv.value for cv in result.columnValues}


def table_descriptor(name: str, families: Sequence[str], max_versions: int, block_size: int | None):
    """A Thrift2 ``TTableDescriptor``: every family with the block cache on, a ROW bloom
    filter, ``max_versions`` and ``block_size`` (``None``: the server default)."""
    return thrift2.TTableDescriptor(
        tableName=thrift2.TTableName(qualifier=name.encode()),
        columns=[
            thrift2.TColumnFamilyDescriptor(
                name=f.encode(),
                maxVersions=max_versions,
                blockSize=block_size,
                blockCacheEnabled=True,
                bloomnFilterType=thrift2.TBloomFilterType.ROW,
            )
            for f in families
        ],
    )


def thrift2_put(mutation: RowMutation, timestamp: int, table: str):
    """The puts of ``mutation`` as a Thrift2 ``TPut`` at ``timestamp``.

    :raises ArgumentError: as :func:`batch_mutation`
    """
    check_row(mutation.row, table)
    values = []
    column_value = thrift2.TColumnValue
    for col, value in mutation.puts.items():
        if type(col) is bytes is type(value):
            family, _, qualifier = col.partition(b":")
            # Certainly well-formed (what check_put accepts as it is): a family, a colon, a
            # qualifier not ending in one. Checked this way because it runs once per cell.
            if family and qualifier and qualifier[-1] != 58:  # 58 is ":"
                # No per-cell timestamp: the gateway gives a cell without one the TPut's.
                values.append(column_value(family, qualifier, value))
                continue
        col = check_put(col, value, table)  # not certainly well-formed: the full check
        family, _, qualifier = col.partition(b":")
        values.append(column_value(family, qualifier, value))
    return thrift2.TPut(mutation.row, values, timestamp)


def thrift2_row_mutations(mutation: RowMutation, timestamp: int, table: str):
    """``mutation`` as Thrift2 ``TRowMutations`` at ``timestamp``: a delete of every version
    of its deleted columns at or below ``timestamp``, then its puts.

    :raises ArgumentError: as :func:`batch_mutation`
    """
    muts = []
    # Thrift2 reads the delete type per TDelete: DELETE_COLUMNS with no qualifier deletes the
    # empty qualifier, not the family, so whole families go in a DELETE_FAMILY of their own.
    by_type: dict[int, list] = {}
    for col in mutation.deletes:
        family, _, qualifier = normalise_column(col).partition(b":")
        kind = (
            thrift2.TDeleteType.DELETE_COLUMNS if qualifier else thrift2.TDeleteType.DELETE_FAMILY
        )
        by_type.setdefault(kind, []).append(
            thrift2.TColumn(family=family, qualifier=qualifier or None, timestamp=timestamp)
        )
    for kind, columns in by_type.items():
        delete = thrift2.TDelete(row=mutation.row, columns=columns, deleteType=kind)
        muts.append(thrift2.TMutation(deleteSingle=delete))
    muts.append(thrift2.TMutation(put=thrift2_put(mutation, timestamp, table)))
    return thrift2.TRowMutations(row=mutation.row, mutations=muts)
