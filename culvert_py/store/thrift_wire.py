"""Thrift1 ``mutateRowsTs`` calls written straight as binary-protocol bytes, for batched writes.

Every batched write of the write protocol (primary rows in bulk mode, index entries in every
mode) is one ``mutateRowsTs`` of up to 1000 rows of ~20 cells. Built the usual way, each cell
is a ``Mutation`` struct made by thriftpy2's generated ``__init__`` and then walked again by
its serialiser: measured on the dev machine, that was about 2 µs per cell, a third of the
client CPU of a bulk load. Here a cell costs a few ``bytes`` appends: the bytes before a
column's value are the same for every row of a batch, so they are built once per column.

The bytes are exactly what thriftpy2's binary protocol writes for the same arguments
(``tests/test_thrift_wire.py`` compares the two on generated batches), so the gateway sees
the same call. Only mutations that are certainly well-formed take this path: a row, column
or value of any other shape makes :func:`encode_mutate_rows_ts` return ``None``, and the
caller builds the structs through :func:`~culvert_py.store.hbase_structs.batch_mutation`,
whose checks raise the one error message for it.

Binary protocol, as thriftpy2 writes it: a field is ``type (1 byte) | id (i16)`` then its
value; ``binary`` is ``i32 length | bytes`` (type byte 11); a list is ``element type | i32
count``; a map ``key type | value type | i32 count``; a struct ends with a 0 byte; integers
are big-endian.
"""

from __future__ import annotations

from collections.abc import Sequence

from thriftpy2.protocol import TBinaryProtocol
from thriftpy2.thrift import TApplicationException, TMessageType

from culvert_py.store.base import RowMutation
from culvert_py.store.gateway import thrift1

_BOOL, _I64, _BINARY, _STRUCT, _MAP, _LIST = 2, 10, 11, 12, 13, 15
_STOP = b"\x00"


def _field(kind: int, fid: int) -> bytes:
    return bytes((kind,)) + fid.to_bytes(2, "big")


def _i32(n: int) -> bytes:
    return n.to_bytes(4, "big", signed=True)


# mutateRowsTs_args: 1 tableName, 2 rowBatches (list<BatchMutation>), 3 timestamp, 4 attributes
_TABLE = _field(_BINARY, 1)
_BATCHES = _field(_LIST, 2) + bytes((_STRUCT,))
_TIMESTAMP = _field(_I64, 3)
_NO_ATTRIBUTES = _field(_MAP, 4) + bytes((_BINARY, _BINARY)) + _i32(0)
# BatchMutation: 1 row, 2 mutations (list<Mutation>)
_ROW = _field(_BINARY, 1)
_MUTATIONS = _field(_LIST, 2) + bytes((_STRUCT,))
# Mutation: 1 isDelete, 2 column, 3 value (absent for a delete), 4 writeToWAL (always true)
_PUT = _field(_BOOL, 1) + b"\x00" + _field(_BINARY, 2)
_DELETE = _field(_BOOL, 1) + b"\x01" + _field(_BINARY, 2)
_VALUE = _field(_BINARY, 3)
_WAL_END = _field(_BOOL, 4) + b"\x01" + _STOP

_COLON = 58  # b":"


def _plain_put_column(col: object) -> bool:
    """Whether ``col`` is a put column ``check_put`` accepts as it is: ``b"family:qualifier"``."""
    return (
        type(col) is bytes
        and len(col) > 2
        and col[0] != _COLON
        and col[-1] != _COLON
        and b":" in col
    )


def _delete_column(col: object) -> bytes | None:
    """``col`` as Thrift1 names it in a delete (a family without its colon), or ``None`` when
    it is not plainly a column or a family (``thrift_columns`` then decides)."""
    if type(col) is not bytes or not col or col[0] == _COLON:
        return None
    return col.rstrip(b":") if col[-1] == _COLON else col


def encode_mutate_rows_ts(
    table: bytes, mutations: Sequence[RowMutation], timestamp: int
) -> bytes | None:
    """The arguments struct of ``mutateRowsTs(table, batches, timestamp, {})``, encoded.

    Each mutation becomes the ``BatchMutation`` that
    :func:`~culvert_py.store.hbase_structs.batch_mutation` builds: its deletes, then its puts.

    :param table: the table name
    :param mutations: the rows to write (a list or tuple)
    :param timestamp: the batch's timestamp (already checked by the caller)
    :return: the encoded struct, or ``None`` when some row, column or value is not certainly
        well-formed (the caller then takes the checked path)
    """
    # Columns seen in this batch: put column -> the bytes before its value's length.
    heads: dict[bytes, bytes] = {}
    deleted: dict[bytes, bytes] = {}
    out = [_TABLE, _i32(len(table)), table, _BATCHES, _i32(len(mutations))]
    append = out.append
    for mutation in mutations:
        if type(mutation) is not RowMutation:
            return None
        row, puts, deletes = mutation
        if type(row) is not bytes or not row or type(puts) is not dict:
            return None
        if type(deletes) not in (tuple, list):
            return None
        count = len(deletes) + len(puts)
        out += (_ROW, len(row).to_bytes(4, "big"), row, _MUTATIONS, count.to_bytes(4, "big"))
        for col in deletes:
            head = deleted.get(col) if type(col) is bytes else None
            if head is None:
                name = _delete_column(col)
                if name is None:
                    return None
                head = deleted[col] = _DELETE + _i32(len(name)) + name + _WAL_END
            append(head)
        for col, value in puts.items():
            head = heads.get(col)
            if head is None:
                if not _plain_put_column(col):
                    return None
                head = heads[col] = _PUT + _i32(len(col)) + col + _VALUE
            if type(value) is not bytes:
                return None
            out += (head, len(value).to_bytes(4, "big"), value, _WAL_END)
        append(_STOP)  # end of the BatchMutation
    out += (_TIMESTAMP, timestamp.to_bytes(8, "big", signed=True), _NO_ATTRIBUTES, _STOP)
    return b"".join(out)


def call_mutate_rows_ts(connection, args: bytes) -> None:
    """Send one encoded ``mutateRowsTs`` on a happybase ``connection`` and read its reply.

    What thriftpy2's client does for the call, with the arguments already encoded: a call
    message header, the struct, a flush; then the reply, whose declared exceptions
    (``IOError``, ``IllegalArgument``) and ``TApplicationException`` are raised as the client
    raises them, so the gateway's retries and error classes see no difference.

    :param connection: an open ``happybase.Connection`` (binary protocol)
    :param args: from :func:`encode_mutate_rows_ts`
    """
    transport = connection.transport
    protocol = TBinaryProtocol(transport, decode_response=False)
    protocol.write_message_begin("mutateRowsTs", TMessageType.CALL, 0)
    transport.write(args)
    protocol.write_message_end()
    transport.flush()
    _, kind, _ = protocol.read_message_begin()
    if kind == TMessageType.EXCEPTION:
        error = TApplicationException()
        error.read(protocol)
        protocol.read_message_end()
        raise error
    result = thrift1.Hbase.mutateRowsTs_result()
    result.read(protocol)
    protocol.read_message_end()
    for declared in (result.io, result.ia):
        if declared is not None:
            raise declared
