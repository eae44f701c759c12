"""HBase-only store behaviour: lost scanners, broken sockets, clusters without Thrift2."""

from __future__ import annotations

import logging
import uuid

import happybase
import pytest

from culvert_py.errors import CapabilityError
from culvert_py.store import open_store
from culvert_py.store.base import CAP_CHECK_AND_MUTATE, CAP_PRESPLIT, RowMutation
from tests.conftest import hbase_test_url

pytestmark = pytest.mark.hbase


@pytest.fixture
def hbase_table(hbase_store):
    name = f"h_{uuid.uuid4().hex[:10]}"
    hbase_store.create_table(name, ["f"])
    yield hbase_store.table(name)
    hbase_store.delete_table(name)


def test_scan_survives_losing_its_scanner_mid_way(hbase_store, hbase_table):
    keys = [b"k%04d" % i for i in range(250)]
    hbase_table.put_many(((k, {b"f:a": k}) for k in keys), 1)
    scan = hbase_table.scan(batch_size=40)
    seen = [next(scan)[0] for _ in range(50)]
    # The gateway forgets the scanner, as after a lease timeout or a gateway restart.
    host, port = hbase_store.host, hbase_store.port
    raw = happybase.Connection(host, port)
    raw.client.scannerClose(scan.scanner_id)
    raw.close()
    seen += [row for row, _ in scan]
    assert seen == keys  # every row exactly once, in order
    assert scan.reopened >= 1


def test_calls_recover_after_every_pooled_socket_is_cut(hbase_store, hbase_table):
    hbase_table.put_many([(b"r", {b"f:a": b"1"})], 1)
    # Cut the sockets of every idle pooled connection behind the pool's back.
    for conn in list(hbase_store._pool._queue.queue):
        conn.transport.close()
    assert hbase_table.get_many([b"r"]) == {b"r": {b"f:a": b"1"}}
    assert [r for r, _ in hbase_table.scan()] == [b"r"]


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
