"""The checkAndMutate sidecar: its protocol's refusals, and writes that ride out its death.

The session's sidecar (``CULVERT_TEST_SIDECAR``) answers the protocol tests. The fault
tests start a sidecar of their own on a free port (``hbase/hbase-local sidecar start``, pids
and logs in a directory of their own), SIGKILL it in the middle of a safe indexed load, and
lose one of its replies through a relay: every row must be loaded, every answer equal the
oracle's and every index verify clean. Every wait is bounded.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from culvert_py.client import Client
from culvert_py.load import load_file
from culvert_py.ops import verify_index
from culvert_py.predicate import matches, parse
from culvert_py.schema import parse_schema
from culvert_py.store import open_store
from culvert_py.store.base import CAP_CHECK_AND_MUTATE_MANY, RowMutation
from culvert_py.store.sidecar import encode_request
from tests.conftest import hbase_test_url, own_meta_table
from tests.relay import Relay
from tests.test_gateways import free_ports, wait_until

pytestmark = pytest.mark.hbase

HBASE_LOCAL = Path(__file__).resolve().parent.parent / "hbase" / "hbase-local"
COLUMNS = {"id": "str", "age": "int", "city": "str"}
QUERIES = ["city = 'c3'", "age BETWEEN 10 AND 12", "age >= 45 AND city = 'c1'"]

own_meta = pytest.fixture(scope="module", autouse=True)(own_meta_table)


def with_sidecar(address: str) -> str:
    url = hbase_test_url()
    return url + ("&" if "?" in url else "?") + f"sidecar={address}"


def session_sidecar() -> tuple[str, int]:
    host, _, port = os.environ.get("CULVERT_TEST_SIDECAR", "127.0.0.1:9089").rpartition(":")
    return host, int(port)


def exchange(sock: socket.socket, body: bytes) -> tuple[int, bytes]:
    """Send one frame, return ``(status, rest of the reply)``."""
    sock.sendall(struct.pack(">I", len(body)) + body)
    head = sock.recv(4, socket.MSG_WAITALL)
    (length,) = struct.unpack(">I", head)
    reply = sock.recv(length, socket.MSG_WAITALL)
    return reply[0], reply[1:]


def test_malformed_requests_are_refused_and_the_connection_stays_usable(hbase_sidecar_store):
    with socket.create_connection(session_sidecar(), timeout=30) as sock:
        assert exchange(sock, b"\x01\x00") == (0, b"\x00\x00\x00\x00")  # PING
        status, text = exchange(sock, b"\x02\x00")
        assert status == 1 and b"protocol version 2" in text
        status, text = exchange(sock, b"\x01\x07")
        assert status == 1 and b"unknown operation 7" in text
        frame = encode_request("t", 1, [(b"r", b"f:v", None, RowMutation(b"r", {b"f:v": b"1"}))])
        status, text = exchange(sock, frame[4:-3])  # cut short inside the item
        assert status == 1 and b"truncated" in text
        status, text = exchange(sock, frame[4:] + b"xx")
        assert status == 1 and b"stray bytes" in text
        missing = f"missing_{uuid.uuid4().hex[:8]}"
        frame = encode_request(
            missing, 1, [(b"r", b"f:v", None, RowMutation(b"r", {b"f:v": b"1"}))]
        )
        status, text = exchange(sock, frame[4:])
        assert status == 1 and missing.encode() in text  # an unknown table: REFUSED
        assert exchange(sock, b"\x01\x00")[0] == 0  # still in step after every refusal


def test_an_oversized_request_is_refused_and_the_connection_closed(hbase_sidecar_store):
    with socket.create_connection(session_sidecar(), timeout=30) as sock:
        sock.sendall(struct.pack(">I", 1 << 30))
        (length,) = struct.unpack(">I", sock.recv(4, socket.MSG_WAITALL))
        reply = sock.recv(length, socket.MSG_WAITALL)
        assert reply[0] == 1 and b"request length" in reply
        assert sock.recv(1) == b""  # closed: the stream cannot be resynchronised


@pytest.fixture(scope="module")
def own_sidecar(tmp_path_factory):
    """A sidecar of the test HBase on a free port: ``(control, kill9, port)``."""
    (port,) = free_ports(1)
    env = {**os.environ, "CULVERT_HBASE_DIR": str(tmp_path_factory.mktemp("sidecar"))}

    def control(action: str) -> None:
        proc = subprocess.run(
            [str(HBASE_LOCAL), "sidecar", action, str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr

    def kill9() -> None:
        pid = Path(env["CULVERT_HBASE_DIR"], "run", f"sidecar-{port}.pid").read_text()
        os.kill(int(pid), signal.SIGKILL)

    control("start")
    yield control, kill9, port
    control("kill")


def indexed_client(url: str) -> tuple[Client, str]:
    db = Client(open_store(url), workers=8)
    name = f"sc_{uuid.uuid4().hex[:8]}"
    indexes = {
        "by_age": {"kind": "range", "columns": ["age"]},
        "by_city": {"kind": "term", "columns": ["city"]},
    }
    db.apply_schema(
        parse_schema(
            {"tables": {name: {"row_key": ["id"], "columns": COLUMNS, "indexes": indexes}}}
        )
    )
    return db, name


def oracle(rows: list[dict], where: str) -> set[str]:
    predicate = parse(where, COLUMNS)
    return {r["id"] for r in rows if matches(predicate, r)}


def check_exact(db: Client, name: str, rows: list[dict]) -> None:
    table = db.table(name)
    assert {r["id"]: r for r in table.scan_rows()} == {r["id"]: r for r in rows}
    for where in QUERIES:
        assert {r["id"] for r in table.query(where)} == oracle(rows, where)
    for index in ("by_age", "by_city"):
        assert verify_index(db, name, index).clean


def test_a_sidecar_killed_mid_load_costs_no_row_and_no_error(own_sidecar, tmp_path):
    control, kill9, port = own_sidecar
    url = with_sidecar(f"127.0.0.1:{port}")
    db, name = indexed_client(url)
    try:
        assert CAP_CHECK_AND_MUTATE_MANY in db.store.capabilities
        table = db.table(name)
        rows = [{"id": f"r{i:06d}", "age": i % 50, "city": f"c{i % 7}"} for i in range(3_000)]
        table.put_many(rows[:500])  # these exist: the load updates them (version checks)
        rows = [{**r, "age": (r["age"] + 1) % 50} if i < 500 else r for i, r in enumerate(rows)]
        path = tmp_path / "rows.csv"
        path.write_text(
            "id,age,city\n" + "".join(f"{r['id']},{r['age']},{r['city']}\n" for r in rows)
        )
        killed = threading.Event()
        after_kill: list[int] = []

        def progress(read: int, total: int) -> None:
            if killed.is_set():
                after_kill.append(read)
            elif read > total // 10 and not hasattr(progress, "started"):
                progress.started = True  # type: ignore[attr-defined]
                assert db.store.sidecar_report()[0][2] > 0  # the sidecar was in use

                def kill() -> None:
                    kill9()
                    killed.set()

                threading.Thread(target=kill, daemon=True).start()

        t0 = time.monotonic()
        report = load_file(table, path, batch_size=250, progress=progress)
        print(f"load {time.monotonic() - t0:.1f} s")
        assert killed.wait(60)
        assert after_kill, "the load ended before the sidecar was killed"
        assert report.loaded == len(rows) and report.rejected == 0
        assert not db.store.sidecar_report()[0][1]  # marked down
        check_exact(db, name, rows)

        # Back: once it answers again, batches go through it again.
        control("start")
        wait_until(lambda: db.store.sidecar_report()[0][1], 30, "the sidecar marked up")
        before = db.store.sidecar_report()[0][2]
        rows = [{**r, "city": "c3"} if i % 5 == 0 else r for i, r in enumerate(rows)]
        table.put_many(rows)
        assert db.store.sidecar_report()[0][2] > before
        check_exact(db, name, rows)
    finally:
        db.drop_table(name)
        db.close()


def test_a_lost_sidecar_reply_is_recognised_not_reapplied(hbase_sidecar_store, caplog):
    # A relay in front of the sidecar forwards one batch, lets HBase apply it, loses the
    # reply and cuts the connection; the store sends the batch through Thrift2, whose
    # version checks fail, and the write protocol finds its own versions in the rows.
    relay = Relay(session_sidecar()[1])
    db, name = indexed_client(with_sidecar(f"127.0.0.1:{relay.port}"))
    try:
        table = db.table(name)
        rows = {f"k{i:02d}": {"id": f"k{i:02d}", "age": i, "city": "x"} for i in range(40)}
        table.put_many(rows.values())
        for row in rows.values():
            row["age"] += 100
        relay.lose_reply_to(b"k07")
        with caplog.at_level(logging.DEBUG, logger="culvert_py.write"):
            table.put_many(rows.values())
        assert relay.lost == 1
        messages = [r.getMessage() for r in caplog.records]
        assert sum("had applied (its reply was lost)" in m for m in messages) >= 1
        assert not any("lost a version race" in m for m in messages)
        check = {r["id"]: r for r in table.scan_rows()}
        assert check == rows
        assert {r["id"] for r in table.query("age >= 100")} == set(rows)
        assert verify_index(db, name, "by_age").clean
    finally:
        db.drop_table(name)
        db.close()
        relay.close()


def test_describe_says_whether_the_sidecar_is_in_use(hbase_store, hbase_sidecar_store):
    assert "batched through the sidecar" in hbase_sidecar_store.describe()
    assert "one Thrift2 call per row (no sidecar configured)" in hbase_store.describe()
    assert CAP_CHECK_AND_MUTATE_MANY not in hbase_store.capabilities


def test_a_sidecar_that_never_answers_is_not_required(hbase_store):
    (port,) = free_ports(1)  # nothing listens there
    with open_store(with_sidecar(f"127.0.0.1:{port}")) as store:
        assert CAP_CHECK_AND_MUTATE_MANY not in store.capabilities
        assert "no sidecar answers" in store.describe()
        name = f"sc_{uuid.uuid4().hex[:8]}"
        store.create_table(name, ["f"])
        try:
            table = store.table(name)
            items = [
                (b"r%d" % i, b"f:v", None, RowMutation(b"r%d" % i, {b"f:v": b"1"}))
                for i in range(30)
            ]
            assert table.check_and_mutate_many(items, 5) == [True] * 30
            assert table.check_and_mutate_many(items, 6) == [False] * 30
            assert store.sidecar_report() == [(f"127.0.0.1:{port}", False, 0)]
        finally:
            store.delete_table(name)
