"""The hand-encoded ``mutateRowsTs`` bytes are exactly thriftpy2's for the same call.

The oracle is thriftpy2 itself: the structs :func:`batch_mutation` builds (the checked path),
serialised by its binary protocol, byte for byte. Mutations of any shape are generated, so
the encoder must also decline (``None``) everything the checked path would not take as is.
The short path of :func:`thrift2_put` is held to its checked path the same way.
"""

from __future__ import annotations

import happybase.connection
from hypothesis import given, settings
from hypothesis import strategies as st
from thriftpy2.protocol import TBinaryProtocol
from thriftpy2.protocol.binary import TBinaryProtocol as PurePythonBinaryProtocol
from thriftpy2.thrift import TClient
from thriftpy2.transport import TMemoryBuffer

from culvert_py.errors import ArgumentError
from culvert_py.store.base import RowMutation, check_put, check_row
from culvert_py.store.gateway import thrift2
from culvert_py.store.hbase_structs import batch_mutation, thrift2_put
from culvert_py.store.thrift_wire import encode_mutate_rows_ts

Hbase = happybase.connection.Hbase

_plain_bytes = st.binary(max_size=12)
_family = st.binary(min_size=1, max_size=4).filter(lambda b: b":" not in b)
_qualifier = st.binary(min_size=1, max_size=8).filter(lambda b: not b.endswith(b":"))
_plain_column = st.builds(lambda f, q: f + b":" + q, _family, _qualifier)
_family_delete = st.builds(lambda f, c: f + c, _family, st.sampled_from([b":", b"::", b""]))
# Odd shapes too: what the checked path rejects or normalises (str columns, bare colons...).
_any_column = st.one_of(
    _plain_column,
    _family_delete,
    st.binary(max_size=6),
    st.text(max_size=6),
)
_plain_mutation = st.builds(
    RowMutation,
    st.binary(min_size=1, max_size=10),
    st.dictionaries(_plain_column, _plain_bytes, max_size=6),
    st.lists(st.one_of(_plain_column, _family_delete), max_size=3),
)
_any_mutation = st.builds(
    RowMutation,
    st.one_of(st.binary(max_size=10), st.text(max_size=3)),
    st.dictionaries(_any_column, st.one_of(_plain_bytes, st.text(max_size=3)), max_size=4),
    st.one_of(st.lists(_any_column, max_size=3), st.tuples(_any_column)),
)
_timestamps = st.integers(min_value=0, max_value=2**63 - 1)


def thriftpy2_bytes(protocol_class, table: bytes, mutations, timestamp: int) -> bytes:
    """The args struct as thriftpy2 writes it, from the checked path's structs."""
    buffer = TMemoryBuffer()
    args = Hbase.mutateRowsTs_args(
        tableName=table,
        rowBatches=[batch_mutation(m, table.decode(errors="replace")) for m in mutations],
        timestamp=timestamp,
        attributes={},
    )
    protocol_class(buffer).write_struct(args)
    return buffer.getvalue()


_SETTINGS = settings(max_examples=300, deadline=None)


@_SETTINGS
@given(
    table=st.binary(min_size=1, max_size=8),
    mutations=st.lists(_plain_mutation, max_size=6),
    timestamp=_timestamps,
)
def test_well_formed_batches_encode_to_thriftpy2s_bytes(table, mutations, timestamp):
    encoded = encode_mutate_rows_ts(table, mutations, timestamp)
    assert encoded is not None  # the write protocol's cells always take the fast path
    assert encoded == thriftpy2_bytes(TBinaryProtocol, table, mutations, timestamp)
    assert encoded == thriftpy2_bytes(PurePythonBinaryProtocol, table, mutations, timestamp)


@_SETTINGS
@given(mutations=st.lists(_any_mutation, min_size=1, max_size=4), timestamp=_timestamps)
def test_anything_else_is_declined_or_encoded_exactly(mutations, timestamp):
    encoded = encode_mutate_rows_ts(b"t", mutations, timestamp)
    try:
        expected = thriftpy2_bytes(TBinaryProtocol, b"t", mutations, timestamp)
    except ArgumentError:
        assert encoded is None  # the checked path raises its own error for it
        return
    assert encoded is None or encoded == expected


def test_a_row_mutation_lookalike_is_declined():
    assert encode_mutate_rows_ts(b"t", [(b"r", {b"f:q": b"v"}, ())], 1) is None
    assert encode_mutate_rows_ts(b"t", [RowMutation(b"r", {b"f:q": bytearray(b"v")})], 1) is None
    assert encode_mutate_rows_ts(b"t", [RowMutation(b"r", {}, iter([b"f:q"]))], 1) is None


def test_the_message_around_it_is_the_clients():
    """The header and struct the call writes equal those of thriftpy2's own client."""
    mutations = [RowMutation(b"row", {b"f:a": b"1", b"f:b": b""}, [b"f:c", b"g:"])]
    ours, theirs = TMemoryBuffer(), TMemoryBuffer()
    protocol = TBinaryProtocol(ours)
    protocol.write_message_begin("mutateRowsTs", 1, 0)  # CALL, sequence id 0 as TClient
    ours.write(encode_mutate_rows_ts(b"t", mutations, 7))
    client = TClient(Hbase, TBinaryProtocol(theirs))
    client._send("mutateRowsTs", tableName=b"t", rowBatches=[batch_mutation(mutations[0], "t")],
                 timestamp=7, attributes={})  # fmt: skip
    assert ours.getvalue() == theirs.getvalue()


def checked_thrift2_put(mutation: RowMutation, timestamp: int):
    """A ``TPut`` with every cell through ``check_put``: what the short path must equal."""
    check_row(mutation.row, "t")
    values = []
    for col, value in mutation.puts.items():
        family, _, qualifier = check_put(col, value, "t").partition(b":")
        values.append(thrift2.TColumnValue(family, qualifier, value))
    return thrift2.TPut(mutation.row, values, timestamp)


def struct_bytes(struct) -> bytes:
    buffer = TMemoryBuffer()
    TBinaryProtocol(buffer).write_struct(struct)
    return buffer.getvalue()


@_SETTINGS
@given(mutation=st.one_of(_plain_mutation, _any_mutation), timestamp=_timestamps)
def test_thrift2_puts_of_plain_cells_are_the_checked_paths(mutation, timestamp):
    def outcome(build):
        try:
            return struct_bytes(build())
        except ArgumentError as exc:
            return str(exc)

    assert outcome(lambda: thrift2_put(mutation, timestamp, "t")) == outcome(
        lambda: checked_thrift2_put(mutation, timestamp)
    )
