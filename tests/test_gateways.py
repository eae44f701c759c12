"""Several Thrift gateway pairs: calls spread over them and ride out one being killed.

The test HBase's own gateways are never touched: this module starts a second pair on free
ports (``hbase/hbase-local gateway start``, pids and logs in a directory of its own) and
kills only that one, with SIGKILL, in the middle of a load and of a stream of queries. Every
wait is bounded.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
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
from culvert_py.store.endpoints import Endpoint, format_gateways
from tests.conftest import hbase_test_url
from tests.relay import Relay

pytestmark = pytest.mark.hbase

HBASE_LOCAL = Path(__file__).resolve().parent.parent / "hbase" / "hbase-local"
COLUMNS = {"id": "str", "age": "int", "city": "str"}
QUERIES = [
    "city = 'c3'",
    "age BETWEEN 10 AND 12",
    "age >= 45 AND city = 'c1'",
    "age < 3 OR city = 'c6'",
]


def free_ports(n: int) -> list[int]:
    socks = [socket.create_server(("127.0.0.1", 0)) for _ in range(n)]
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture(scope="module", autouse=True)
def own_meta_table():
    """A meta table of this module's own: the dev HBase is shared with other branches,
    whose applied schemas may hold keys this branch does not know."""
    import culvert_py.meta

    name = f"__culvert_meta_gw_{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(culvert_py.meta, "META_TABLE", name)
        yield
    with open_store(hbase_test_url()) as store:
        store.delete_table(name)


@pytest.fixture(scope="module")
def base_gateway() -> Endpoint:
    """The test HBase's own gateway pair."""
    with open_store(hbase_test_url()) as store:
        return store.endpoints[0]


@pytest.fixture(scope="module")
def extra_pair(tmp_path_factory, base_gateway):
    """A second gateway pair of the test HBase: ``(control, endpoint)``, where
    ``control("start" | "kill")`` runs ``hbase-local gateway`` on it."""
    p1, p2 = free_ports(2)
    env = {**os.environ, "CULVERT_HBASE_DIR": str(tmp_path_factory.mktemp("gateway-pair"))}

    def control(action: str) -> str:
        proc = subprocess.run(
            [str(HBASE_LOCAL), "gateway", action, str(p1), str(p2)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def kill9() -> None:
        # SIGKILL straight from the pid files (the script's `gateway kill` also waits for
        # the processes to be reaped, seconds that would let a short load finish first).
        pids = env["CULVERT_HBASE_DIR"] + "/run"
        for role in (f"thrift1-{p1}", f"thrift2-{p2}"):
            os.kill(int(Path(f"{pids}/{role}.pid").read_text()), signal.SIGKILL)
        control("kill")  # forgets the pids

    control("start")
    yield control, kill9, Endpoint("127.0.0.1", p1, p2)
    control("kill")


def two_gateway_url(*endpoints: Endpoint) -> str:
    url = format_gateways(endpoints)
    return url + ("&" if "?" in url else "?") + "pool_size=8"


def wait_until(condition, seconds: float, what: str) -> float:
    """Poll ``condition`` until true, at most ``seconds``; return the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            pytest.fail(f"{what}: not within {seconds} s")
        time.sleep(0.05)
    return time.monotonic() - started


def gateways_of(store, endpoint: Endpoint) -> list[tuple[str, bool, int]]:
    names = {f"{endpoint.host}:{endpoint.port}", f"{endpoint.host}:{endpoint.thrift2_port}"}
    return [g for g in store.gateway_report() if g[0] in names]


@pytest.fixture
def indexed(extra_pair, base_gateway):
    """A client over both gateway pairs and a fresh table with a range and a term index."""
    control, kill9, extra = extra_pair
    db = Client(open_store(two_gateway_url(base_gateway, extra)), workers=8)
    name = f"gw2_{uuid.uuid4().hex[:8]}"
    db.apply_schema(
        parse_schema(
            {
                "tables": {
                    name: {
                        "row_key": ["id"],
                        "columns": COLUMNS,
                        "indexes": {
                            "by_age": {"kind": "range", "columns": ["age"]},
                            "by_city": {"kind": "term", "columns": ["city"]},
                        },
                    }
                }
            }
        )
    )
    yield db, db.table(name), control, kill9, extra
    db.drop_table(name)
    db.close()


def oracle(rows: list[dict], where: str) -> set[str]:
    predicate = parse(where, COLUMNS)
    return {r["id"] for r in rows if matches(predicate, r)}


def test_a_pair_killed_mid_load_then_mid_queries_costs_no_error(indexed, tmp_path):
    db, table, control, kill9, extra = indexed
    rows = [{"id": f"r{i:06d}", "age": i % 50, "city": f"c{i % 7}"} for i in range(3_000)]
    path = tmp_path / "rows.csv"
    path.write_text("id,age,city\n" + "".join(f"{r['id']},{r['age']},{r['city']}\n" for r in rows))

    # 1. Killed mid-load: safe-mode writes (conditional, one per row) are in flight on it.
    killed = threading.Event()
    after_kill: list[int] = []

    def kill() -> None:
        kill9()
        killed.set()

    def progress(read: int, total: int) -> None:
        if killed.is_set():
            after_kill.append(read)
        elif read > total // 10 and not hasattr(progress, "started"):
            progress.started = True  # type: ignore[attr-defined]
            assert all(calls > 0 for _, _, calls in gateways_of(db.store, extra))
            threading.Thread(target=kill, daemon=True).start()

    t0 = time.monotonic()
    report = load_file(table, path, batch_size=500, progress=progress)
    print(f"load {time.monotonic() - t0:.1f} s")
    assert killed.wait(60)
    assert after_kill, "the load ended before the gateway pair was killed"
    assert report.loaded == len(rows) and report.rejected == 0
    assert all(not up for _, up, _ in gateways_of(db.store, extra))
    assert {r["id"]: r for r in table.scan_rows()} == {r["id"]: r for r in rows}

    # 2. Back: once it answers again, calls go to it again.
    t0 = time.monotonic()
    control("start")
    print(f"restart {time.monotonic() - t0:.1f} s")
    wait_until(
        lambda: all(up for _, up, _ in gateways_of(db.store, extra)), 30, "the pair marked up"
    )
    before = sum(calls for _, _, calls in gateways_of(db.store, extra))
    for where in QUERIES:
        assert {r["id"] for r in table.query(where)} == oracle(rows, where)
    assert sum(calls for _, _, calls in gateways_of(db.store, extra)) > before

    # 3. Killed mid-query-stream: every answer exact, none failed.
    answers: list[tuple[bool, str]] = []
    stop = threading.Event()

    failure: list[BaseException] = []
    latency: list[tuple[bool, float]] = []

    def stream() -> None:
        n = 0
        try:
            while not stop.is_set():
                where = QUERIES[n % len(QUERIES)]
                t0 = time.monotonic()
                got = {r["id"] for r in table.query(where)}
                latency.append((killed.is_set(), time.monotonic() - t0))
                exact = got == oracle(rows, where)
                answers.append((killed.is_set() if exact else None, where))
                n += 1
        except BaseException as exc:  # reported by the test's thread
            failure.append(exc)

    killed.clear()
    runner = threading.Thread(target=stream, daemon=True)
    runner.start()
    wait_until(lambda: len(answers) >= 4 or failure, 120, "four answers before the kill")
    kill()
    down = wait_until(
        lambda: not any(up for _, up, _ in gateways_of(db.store, extra)), 10, "the pair marked down"
    )
    seen = len(answers)
    wait_until(lambda: len(answers) >= seen + 8 or failure, 120, "eight answers after the kill")
    stop.set()
    runner.join(120)
    assert not failure, failure
    assert all(ok is not None for ok, _ in answers), [w for ok, w in answers if ok is None]
    assert any(ok for ok, _ in answers)
    slowest_before = max(t for k, t in latency if not k)
    slowest_after = max(t for k, t in latency if k)
    print(
        f"marked down {down:.2f} s after the kill returned; slowest query before the kill "
        f"{slowest_before:.2f} s, after {slowest_after:.2f} s"
    )
    for index in ("by_age", "by_city"):
        assert verify_index(db, table.name, index).clean


def test_a_lost_reply_to_a_conditional_write_is_recognised_not_reapplied(base_gateway, caplog):
    # A relay in front of the real gateways forwards one row update, lets HBase apply it,
    # loses the reply and cuts the connection; the store retries on the other gateway,
    # whose version check fails, and the write protocol finds its own version in the row.
    relays = [Relay(base_gateway.port), Relay(base_gateway.thrift2_port)]
    relayed = Endpoint("127.0.0.1", relays[0].port, relays[1].port)
    db = Client(open_store(two_gateway_url(relayed, base_gateway)), workers=4)
    name = f"gwr_{uuid.uuid4().hex[:8]}"
    try:
        db.apply_schema(
            parse_schema(
                {
                    "tables": {
                        name: {
                            "row_key": ["id"],
                            "columns": COLUMNS,
                            "indexes": {"by_age": {"kind": "range", "columns": ["age"]}},
                        }
                    }
                }
            )
        )
        table = db.table(name)
        rows = {f"k{i:02d}": {"id": f"k{i:02d}", "age": i, "city": "x"} for i in range(40)}
        table.put_many(rows.values())
        relays[1].lose_reply_to(b"checkAndMutate")
        with caplog.at_level(logging.DEBUG, logger="culvert_py.write"):
            for row in rows.values():  # one at a time: half of them go through the relay
                row["age"] += 100
                table.put(row)
                if relays[1].lost:
                    break
        relays[1].lose_reply_to(None)
        assert relays[1].lost == 1
        messages = [r.getMessage() for r in caplog.records]
        assert sum("had applied (its reply was lost)" in m for m in messages) == 1
        assert not any("lost a version race" in m for m in messages)
        assert {r["id"]: r for r in table.scan_rows()} == rows
        assert {r["id"] for r in table.query("age >= 100")} == {
            k for k, r in rows.items() if r["age"] >= 100
        }
        assert verify_index(db, name, "by_age").clean
    finally:
        db.drop_table(name)
        db.close()
        for relay in relays:
            relay.close()
