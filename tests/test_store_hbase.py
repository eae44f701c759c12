"""HBase-only store behaviour: lost scanners, broken sockets, clusters without Thrift2."""

from __future__ import annotations

import gc
import logging
import threading
import uuid

import happybase
import pytest
from thriftpy2.transport import TTransportException

from culvert_py.errors import CapabilityError, StoreError
from culvert_py.store import open_store
from culvert_py.store.base import CAP_CHECK_AND_MUTATE, CAP_PRESPLIT, RowMutation
from culvert_py.store.gateway import (
    OTHER,
    PERMANENT,
    SCANNER_LOST,
    TRANSIENT,
    classify,
    thrift1,
    thrift2,
)
from culvert_py.store.pool import ConnectionPool, PoolTimeoutError
from tests.conftest import hbase_test_url

pytestmark = pytest.mark.hbase


@pytest.fixture
def hbase_table(hbase_store):
    name = f"h_{uuid.uuid4().hex[:10]}"
    hbase_store.create_table(name, ["f"])
    yield hbase_store.table(name)
    hbase_store.delete_table(name)


@pytest.fixture
def scanner_log(caplog):
    """The scan module's log: the ids of the scanners it opens, the losses it survives."""
    with caplog.at_level(logging.DEBUG, logger="culvert_py.store.hbase_scan"):
        yield caplog


def opened_scanners(caplog) -> list[int]:
    return [r.args[0] for r in caplog.records if r.msg.startswith("opened scanner")]


def scanner_is_open(store, scanner_id: int) -> bool:
    raw = happybase.Connection(store.host, store.port)
    try:
        raw.client.scannerGetList(scanner_id, 0)
    except thrift1.IllegalArgument as exc:  # "scanner ID is invalid"
        assert classify(exc) == SCANNER_LOST
        return False
    finally:
        raw.close()
    return True


def test_scan_survives_losing_its_scanner_mid_way(hbase_store, hbase_table, scanner_log):
    keys = [b"k%04d" % i for i in range(250)]
    hbase_table.put_many(((k, {b"f:a": k}) for k in keys), 1)
    scan = hbase_table.scan(batch_size=40)
    seen = [next(scan)[0] for _ in range(50)]
    # The gateway forgets the scanner, as after a lease timeout or a gateway restart.
    (scanner_id,) = opened_scanners(scanner_log)
    raw = happybase.Connection(hbase_store.host, hbase_store.port)
    raw.client.scannerClose(scanner_id)
    raw.close()
    seen += [row for row, _ in scan]
    assert seen == keys  # every row exactly once, in order
    assert any("lost" in r.getMessage() for r in scanner_log.records)
    assert len(opened_scanners(scanner_log)) == 2


def test_closing_or_dropping_a_scan_releases_its_server_side_scanner(
    hbase_store, hbase_table, scanner_log
):
    hbase_table.put_many(((b"k%03d" % i, {b"f:a": b"1"}) for i in range(30)), 1)
    # The first batch comes from one call that leaves no scanner open; a scanner holds the
    # rows after it.
    opened_before = len(opened_scanners(scanner_log))
    scan = hbase_table.scan(batch_size=10)
    rows = [next(scan) for _ in range(10)]
    assert len(opened_scanners(scanner_log)) == opened_before
    assert rows[-1][0] == b"k009"
    next(scan)
    closed_id = opened_scanners(scanner_log)[-1]
    assert scanner_is_open(hbase_store, closed_id)
    scan.close()
    assert not scanner_is_open(hbase_store, closed_id)

    dropped = hbase_table.scan(batch_size=10)
    for _ in range(11):
        next(dropped)
    dropped_id = opened_scanners(scanner_log)[-1]
    del dropped
    gc.collect()
    assert not scanner_is_open(hbase_store, dropped_id)

    assert len(list(hbase_table.scan(batch_size=7))) == 30
    assert not scanner_is_open(hbase_store, opened_scanners(scanner_log)[-1])


def test_calls_recover_after_every_pooled_socket_is_cut(hbase_store, hbase_table):
    hbase_table.put_many([(b"r", {b"f:a": b"1"})], 1)
    # Cut the sockets of every idle pooled connection behind the pool's back.
    for conn in list(hbase_store._gateway._thrift1[0].pool._idle):
        conn.transport.close()
    assert hbase_table.get_many([b"r"]) == {b"r": {b"f:a": b"1"}}
    assert [r for r, _ in hbase_table.scan()] == [b"r"]


def test_refusals_keep_the_thrift_error_as_their_cause(hbase_store):
    with pytest.raises(StoreError) as err:
        hbase_store.table("no_such_table_culvert").get_many([b"r"])
    assert isinstance(err.value.__cause__, thrift1.IOError | thrift1.IllegalArgument)


def test_a_closed_store_refuses_calls():
    with open_store(hbase_test_url()) as store:
        assert isinstance(store.list_tables(), list)
    with pytest.raises(StoreError, match="closed"):
        store.list_tables()
    store.close()  # closing twice is harmless


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (thrift1.IllegalArgument(message=b"scanner ID is invalid"), SCANNER_LOST),
        (thrift1.IOError(message=b"UnknownScannerException: Unknown scanner 7"), SCANNER_LOST),
        (thrift1.IOError(message=b"org.apache.hadoop.hbase.NotServingRegionException"), TRANSIENT),
        (thrift2.TIOError(message="RegionTooBusyException: Over memstore limit"), TRANSIENT),
        (thrift1.IOError(message=b"TableNotFoundException: nope"), PERMANENT),
        (thrift1.AlreadyExists(message=b"table t exists"), PERMANENT),
        (TTransportException(message="Could not connect"), TRANSIENT),
        (ConnectionResetError(), TRANSIENT),
        (TimeoutError(), TRANSIENT),
        (PoolTimeoutError("all busy"), TRANSIENT),
        (KeyError("not the store's"), OTHER),
    ],
)
def test_failures_are_classified_by_type(exc, kind):
    assert classify(exc) == kind


class FakeConnection:
    made = 0

    def __init__(self) -> None:
        FakeConnection.made += 1
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_pool_reuses_connections_and_closes_them_on_close():
    pool = ConnectionPool(FakeConnection, 2, "fake:1", lambda exc: isinstance(exc, KeyError))
    with pool.connection() as first:
        pass
    with pool.connection() as again:
        assert again is first
    with pytest.raises(KeyError), pool.connection() as conn:
        raise KeyError("a declared server exception: the socket is fine")
    assert conn is first and not first.closed
    with pytest.raises(TTransportException), pool.connection() as conn:
        raise TTransportException(message="reset")
    assert conn.closed  # out of step with its server: never lent again
    with pool.connection() as fresh:
        assert fresh is not first
    with pool.connection() as lent:
        pool.close()
    assert fresh.closed and lent.closed
    with pytest.raises(StoreError, match="closed"), pool.connection():
        pass


def test_pool_lends_at_most_size_connections():
    pool = ConnectionPool(FakeConnection, 1, "fake:1")
    borrowed = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with pool.connection():
            borrowed.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    borrowed.wait(10)
    try:
        with pytest.raises(PoolTimeoutError, match="fake:1"), pool.connection(timeout=0.05):
            pass
    finally:
        release.set()
        holder.join()
    with pool.connection(timeout=1):
        pass


def test_cluster_without_thrift2_reports_what_it_cannot_do(caplog):
    url = hbase_test_url().split("?")[0] + "?thrift2_port=0"
    with caplog.at_level(logging.WARNING), open_store(url) as store:
        assert CAP_CHECK_AND_MUTATE not in store.capabilities
        assert CAP_PRESPLIT not in store.capabilities
        assert "NOT serialised" in store.describe()
        name = f"h_{uuid.uuid4().hex[:10]}"
        store.create_table(name, ["f"], [b"\x40", b"\x80"])
        try:
            assert len(store.regions(name)) == 1  # created unsplit, with a warning
            assert any("unsplit" in r.getMessage() for r in caplog.records)
            with pytest.raises(CapabilityError, match="Thrift2"):
                store.table(name).check_and_mutate(
                    b"r", b"f:v", None, RowMutation(b"r", {b"f:v": b"1"}), 1
                )
        finally:
            store.delete_table(name)


def test_thrift2_port_pointing_at_a_thrift1_gateway_is_reported():
    base = hbase_test_url().split("?")[0]
    port = base.rsplit(":", 1)[1]
    with open_store(f"{base}?thrift2_port={port}") as store:
        assert CAP_CHECK_AND_MUTATE not in store.capabilities
        assert "Thrift2" in store.capability_report()


def test_time_range_scan_without_thrift2_equals_the_thrift2_scan(hbase_store, caplog):
    # Three versions kept: a range scan returns the newest version *inside* the range, which
    # the Thrift1 fallback must find too (the server bounds it above, the client below).
    name = f"h_{uuid.uuid4().hex[:10]}"
    hbase_store.create_table(name, ["f", "g"], max_versions=3)
    try:
        table = hbase_store.table(name)
        for ts in (10, 20, 30):
            rows = [(b"k%d" % i, {b"f:a": b"%d@%d" % (i, ts)}) for i in range(ts // 10, 6)]
            rows.append((b"g%d" % ts, {b"g:x": b"%d" % ts, b"f:b": b"b"}))
            table.put_many(rows, ts)
        url = hbase_test_url().split("?")[0] + "?thrift2_port=0"
        with (
            caplog.at_level(logging.DEBUG, logger="culvert_py.store.hbase"),
            open_store(url) as bare,
        ):
            fallback = bare.table(name)
            cases = [
                {},
                {"columns": [b"g:"]},
                {"columns": [b"f:a"], "include_timestamp": True},
                {"prefix": b"k"},
                {"start": b"k2", "stop": b"k5"},
                {"limit": 2, "batch_size": 1},
                {"filter": "KeyOnlyFilter()"},
            ]
            for low, high in [(15, 30), (5, 15), (0, 2**63 - 1), (20, 20), (31, 40)]:
                for args in cases:
                    want = list(table.scan(time_range=(low, high), **args))
                    got = list(fallback.scan(time_range=(low, high), **args))
                    assert got == want, (low, high, args)
            # k3 holds versions 10, 20 and 30 of f:a; the newest in the range is 20.
            in_range = dict(fallback.scan(time_range=(15, 25), columns=[b"f:a"]))
            assert in_range[b"k3"] == {b"f:a": b"3@20"}
        assert any("client-side" in r.getMessage() for r in caplog.records)
    finally:
        hbase_store.delete_table(name)


def test_time_range_scan_survives_losing_its_thrift2_scanner(hbase_store, hbase_table, scanner_log):
    keys = [b"k%04d" % i for i in range(120)]
    hbase_table.put_many(((k, {b"f:a": k}) for k in keys), 5)
    scan = hbase_table.scan(batch_size=25, time_range=(5, 6))
    seen = [next(scan)[0] for _ in range(30)]
    (scanner_id,) = opened_scanners(scanner_log)
    hbase_store._gateway.call_thrift2("close", lambda c: c.closeScanner(scanner_id))
    seen += [row for row, _ in scan]
    assert seen == keys
    assert len(opened_scanners(scanner_log)) == 2
    # Exhausted, the scan closed its second scanner: the gateway no longer knows it.
    last = opened_scanners(scanner_log)[-1]
    with (
        pytest.raises(thrift2.TIllegalArgument) as lost,
        hbase_store._gateway._thrift2[0].pool.connection(timeout=5) as client,
    ):
        client.getScannerRows(last, 1)
    assert classify(lost.value) == SCANNER_LOST
