"""The SQLite store beyond the contract: several processes on one file, and files it refuses.

The multi-process tests spawn real processes (not threads): each opens its own store on
one file, so only SQLite's file locking stands between them, as between two ``culvert load``
runs. Each process reports what it did; the file must agree afterwards.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import random
import re
import sqlite3
import stat
import tempfile
import threading
import time
import uuid

import pytest

import culvert_py
from culvert_py.errors import StoreError, TransientStoreError
from culvert_py.ops import verify_index
from culvert_py.schema import parse_schema
from culvert_py.store import open_store
from culvert_py.store.base import RowMutation
from culvert_py.store.sqlite import SQLiteStore
from tests.oracle import assert_indexes_exact

PROCESSES = 4
ROWS = 40
#: Seconds a group of processes may take before the test fails instead of hanging.
PROCESS_DEADLINE = 60.0


def _child(slot, target, args, barrier, results) -> None:
    try:
        barrier.wait(timeout=PROCESS_DEADLINE)  # spawned processes start at different times
        results.put((slot, True, target(*args)))
    except BaseException as exc:  # reported: an error in a child must fail the test
        results.put((slot, False, f"{type(exc).__name__}: {exc}"))


def run_processes(target, args_per_process: list[tuple]) -> list:
    """Run ``target(*args)`` in one spawned process per ``args``, all released at once.

    :return: each process's return value, in the order of ``args_per_process``
    """
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(args_per_process))
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_child, args=(slot, target, args, barrier, results))
        for slot, args in enumerate(args_per_process)
    ]
    for proc in procs:
        proc.start()
    out: dict[int, object] = {}
    errors = []
    deadline = time.monotonic() + PROCESS_DEADLINE
    try:
        while len(out) + len(errors) < len(procs):
            try:
                slot, ok, value = results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"processes did not finish within {PROCESS_DEADLINE} s")
            if ok:
                out[slot] = value
            else:
                errors.append(f"process {slot}: {value}")
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join()
    assert errors == []
    return [out[slot] for slot in range(len(procs))]


# -- check_and_mutate across processes -------------------------------------------------


def counter_key(i: int) -> bytes:
    return b"counter%02d" % i


def increment_counters(url: str, table: str, increments: int, seed: int) -> list[int]:
    """Make ``increments`` successful increments of random counters; return them per row.

    Each increment reads the value and its version token, then writes value + 1 and a new
    token conditioned on the token it read, re-reading when the condition failed.
    """
    rng = random.Random(seed)
    done = [0] * ROWS
    with open_store(url) as store:
        table_ = store.table(table)
        for _ in range(increments):
            i = rng.randrange(ROWS)
            key = counter_key(i)
            while True:
                cells = table_.get_many([key], include_timestamp=True)[key]
                (value, ts), (version, _) = cells[b"f:n"], cells[b"f:v"]
                new = RowMutation(key, {b"f:n": b"%d" % (int(value) + 1), b"f:v": new_token()})
                if table_.check_and_mutate(key, b"f:v", version, new, ts + 1):
                    done[i] += 1
                    break
    return done


def new_token() -> bytes:
    return uuid.uuid4().bytes


def test_check_and_mutate_loses_no_update_between_processes(tmp_path):
    url = f"sqlite:///{tmp_path / 'counters.db'}"
    with open_store(url) as store:
        store.create_table("counters", ["f"])
        store.table("counters").put_many(
            ((counter_key(i), {b"f:n": b"0", b"f:v": new_token()}) for i in range(ROWS)), 1
        )
    increments = 250
    reports = run_processes(
        increment_counters, [(url, "counters", increments, seed) for seed in range(PROCESSES)]
    )
    with open_store(url) as store:
        final = store.table("counters").get_many([counter_key(i) for i in range(ROWS)])
    counters = [int(final[counter_key(i)][b"f:n"]) for i in range(ROWS)]
    # A lost update is an increment two processes both saw succeed: the counter falls short.
    assert counters == [sum(report[i] for report in reports) for i in range(ROWS)]
    assert sum(counters) == PROCESSES * increments


# -- mutate_many across processes ------------------------------------------------------


def write_batches(url: str, table: str, slot: int, batches: int, per_batch: int) -> int:
    """Write ``batches`` batches of own and shared rows at timestamp ``10 + slot``."""
    written = 0
    with open_store(url) as store:
        table_ = store.table(table)
        for b in range(batches):
            own = [
                RowMutation(b"p%d-%04d" % (slot, b * per_batch + i), {b"f:v": b"%d" % slot})
                for i in range(per_batch)
            ]
            shared = [RowMutation(b"shared-%02d" % i, {b"f:v": b"%d" % slot}) for i in range(10)]
            written += table_.mutate_many(own + shared, 10 + slot)
    return written


def test_processes_writing_one_file_at_once_all_succeed(tmp_path):
    url = f"sqlite:///{tmp_path / 'batches.db'}"
    with open_store(url) as store:
        store.create_table("t", ["f"])
    batches, per_batch = 40, 250
    written = run_processes(
        write_batches, [(url, "t", slot, batches, per_batch) for slot in range(PROCESSES)]
    )
    assert written == [batches * (per_batch + 10)] * PROCESSES
    with open_store(url) as store:
        rows = dict(store.table("t").scan())
    for slot in range(PROCESSES):
        own = [k for k in rows if k.startswith(b"p%d-" % slot)]
        assert len(own) == batches * per_batch
        assert all(rows[k] == {b"f:v": b"%d" % slot} for k in own)
    # Whatever order the writes arrived in, the newest timestamp (the last slot's) wins.
    assert {rows[b"shared-%02d" % i][b"f:v"] for i in range(10)} == {b"%d" % (PROCESSES - 1)}


def create_one_table(url: str, name: str) -> None:
    with open_store(url) as store:
        store.create_table(name, ["f"])


def test_processes_opening_a_new_file_at_once_share_one_schema(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    run_processes(create_one_table, [(url, f"t{slot}") for slot in range(PROCESSES)])
    with open_store(url) as store:
        assert store.list_tables() == [f"t{slot}" for slot in range(PROCESSES)]


def test_a_lock_held_past_the_timeout_is_a_transient_error_naming_the_file(tmp_path):
    path = tmp_path / "held.db"
    with open_store(f"sqlite:///{path}") as store:
        store.create_table("t", ["f"])
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's long write, as far as SQLite knows
    try:
        with open_store(f"sqlite:///{path}?timeout=0.5") as store:
            assert store.table("t").get_many([b"r"]) == {}  # WAL: readers are not blocked
            started = time.monotonic()
            with pytest.raises(TransientStoreError) as err:
                store.table("t").put_many([(b"r", {b"f:a": b"1"})], 1)
            waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    assert re.search(r"after waiting \d+\.\d s", message), message
    assert 0.5 <= waited < 3.0


def test_a_writer_waits_for_a_short_lock_instead_of_failing(tmp_path):
    path = tmp_path / "brief.db"
    with open_store(f"sqlite:///{path}") as store:
        store.create_table("t", ["f"])
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.3, lambda: holder.execute("ROLLBACK"))
        started = time.monotonic()
        release.start()
        try:
            assert store.table("t").put_many([(b"r", {b"f:a": b"1"})], 1) == 1
        finally:
            release.join()
            holder.close()
        assert time.monotonic() - started >= 0.25
        assert store.table("t").get_many([b"r"]) == {b"r": {b"f:a": b"1"}}


# -- the client's write protocol across processes --------------------------------------

CITIES = ["Oslo", "Lima", "Pune", "Graz", "Kobe"]


def people_schema(name: str):
    return parse_schema(
        {
            "tables": {
                name: {
                    "family": "d",
                    "row_key": ["id"],
                    "salt_buckets": 4,
                    "columns": {"id": "str", "city": "str", "age": "int"},
                    "indexes": {
                        "by_city": {"kind": "term", "columns": ["city"]},
                        "by_age": {"kind": "range", "columns": ["age"]},
                    },
                }
            }
        }
    )


def write_people(url: str, table: str, rounds: int, seed: int) -> list[dict]:
    """Overwrite the same keys with random values for ``rounds`` rounds, deleting a few
    keys each round; return every row written."""
    rng = random.Random(seed)
    history: list[dict] = []
    with culvert_py.connect(url, workers=4) as db:
        people = db.table(table)
        for _ in range(rounds):
            rows = [
                {"id": f"k{i:02d}", "city": rng.choice(CITIES), "age": rng.randrange(20, 28)}
                for i in range(ROWS)
            ]
            rng.shuffle(rows)
            people.put_many(rows, batch_size=10)
            history += rows
            people.delete_many([f"k{i:02d}" for i in rng.sample(range(ROWS), 4)])
    return history


def test_clients_in_several_processes_keep_every_index_exact(tmp_path):
    url = f"sqlite:///{tmp_path / 'people.db'}"
    with culvert_py.connect(url, workers=4) as db:
        db.apply_schema(people_schema("people"))
    histories = run_processes(write_people, [(url, "people", 6, seed) for seed in range(PROCESSES)])
    with culvert_py.connect(url, workers=4) as db:
        for index in ("by_city", "by_age"):
            report = verify_index(db, "people", index)
            assert report.clean, report.summary()
        people = db.table("people")
        assert assert_indexes_exact(people, [row for h in histories for row in h]) > 10


# -- files the store refuses -----------------------------------------------------------


def open_error(url: str) -> str:
    with pytest.raises(StoreError) as err:
        open_store(url).close()
    message = str(err.value)
    assert "\n" not in message
    return message


def test_a_file_that_is_not_a_database_is_refused_untouched(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("shopping list\n" * 40)
    message = open_error(f"sqlite:///{path}")
    assert message == f"cannot open SQLite store {str(path)!r}: file is not a database"
    assert path.read_text() == "shopping list\n" * 40


def test_another_applications_database_is_refused_untouched(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
    message = open_error(f"sqlite:///{path}")
    assert str(path) in message and "another application's" in message and "users" in message
    with sqlite3.connect(path) as other:
        names = [r[0] for r in other.execute("SELECT name FROM sqlite_master")]
        mode = other.execute("PRAGMA journal_mode").fetchone()[0]
    assert (names, mode) == (["users"], "delete")  # no tables added, not switched to WAL


def test_a_table_of_ours_with_another_shape_is_refused(tmp_path):
    path = tmp_path / "odd.db"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE cells (k TEXT, v TEXT)")
    message = open_error(f"sqlite:///{path}")
    assert str(path) in message and "'cells'" in message and "k, v" in message


def test_a_directory_or_a_missing_directory_is_refused(tmp_path):
    assert "is a directory" in open_error(f"sqlite:///{tmp_path}")
    missing = tmp_path / "no" / "such" / "x.db"
    message = open_error(f"sqlite:///{missing}")
    assert (
        str(missing) in message and f"{str(tmp_path / 'no' / 'such')!r} does not exist" in message
    )
    assert not (tmp_path / "no").exists()


def test_read_only_mode_reads_and_refuses_writes_naming_the_file(tmp_path):
    path = tmp_path / "ro.db"
    with open_store(f"sqlite:///{path}") as store:
        store.create_table("t", ["f"])
        store.table("t").put_many([(b"r", {b"f:a": b"1"})], 1)
    with open_store(f"sqlite:///{path}?mode=ro") as store:
        assert store.list_tables() == ["t"]
        assert store.table("t").get_many([b"r"]) == {b"r": {b"f:a": b"1"}}
        assert list(store.table("t").scan()) == [(b"r", {b"f:a": b"1"})]
        writes = [
            lambda: store.create_table("u", ["f"]),
            lambda: store.delete_table("t"),
            lambda: store.table("t").put_many([(b"r", {b"f:a": b"2"})], 2),
            lambda: store.table("t").check_and_mutate(
                b"r", b"f:a", b"1", RowMutation(b"r", {b"f:a": b"2"}), 2
            ),
        ]
        for write in writes:
            with pytest.raises(StoreError, match="read-only") as err:
                write()
            assert str(path) in str(err.value) and "\n" not in str(err.value)
    with open_store(f"sqlite:///{path}") as store:
        assert store.list_tables() == ["t"]
        assert store.table("t").get_many([b"r"]) == {b"r": {b"f:a": b"1"}}
    assert "does not exist" in open_error(f"sqlite:///{tmp_path / 'absent.db'}?mode=ro")
    empty = tmp_path / "empty.db"
    empty.touch()
    assert "not a culvert store" in open_error(f"sqlite:///{empty}?mode=ro")


def as_unprivileged_user(check) -> str:
    """Run ``check()`` in a forked child that cannot override file permissions: as user
    ``nobody`` when the tests run as root (root ignores permission bits). Return what it
    returned, or its error as ``"error: …"``."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only already-imported code runs here, and it always exits
        status = 0
        try:
            os.close(read_end)
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            try:
                answer = str(check())
            except BaseException as exc:
                answer = f"error: {type(exc).__name__}: {exc}"
            os.write(write_end, answer.encode())
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    return b"".join(chunks).decode()


def test_a_file_without_write_permission_is_refused_unless_opened_read_only():
    # A directory under /tmp itself: pytest's tmp_path is private to the user running it.
    shared = tempfile.mkdtemp(prefix="culvert-ro-")
    try:
        os.chmod(shared, 0o777)  # the unprivileged child may create the -shm file beside it
        path = os.path.join(shared, "locked.db")
        with open_store(f"sqlite:///{path}") as store:
            store.create_table("t", ["f"])
            store.table("t").put_many([(b"r", {b"f:a": b"1"})], 1)
        os.chmod(path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)

        def open_read_write():
            SQLiteStore(path).close()

        refused = as_unprivileged_user(open_read_write)
        assert refused == (
            f"error: StoreError: cannot open SQLite store {path!r}: the file is read-only "
            f"(no write permission); open sqlite:///{path}?mode=ro to read it"
        )

        def read_then_write():
            with open_store(f"sqlite:///{path}?mode=ro") as store:
                got = store.table("t").get_many([b"r"])
                store.table("t").put_many([(b"r", {b"f:a": b"2"})], 2)
            return got

        answer = as_unprivileged_user(read_then_write)
        assert answer.startswith("error: StoreError: cannot write to table 't': SQLite store")
        assert "read-only" in answer and path in answer
        assert as_unprivileged_user(lambda: SQLiteStore(path, read_only=True).list_tables()) == (
            "['t']"
        )
        os.chmod(shared, 0o755)  # now the child cannot create a file in it either
        fresh = os.path.join(shared, "fresh.db")
        assert as_unprivileged_user(lambda: SQLiteStore(fresh).close()) == (
            f"error: StoreError: cannot open SQLite store {fresh!r}: cannot create it, "
            f"directory {shared!r} is not writable"
        )
        for leftover in ("-shm", "-wal"):  # as after the last writer closed the file
            if os.path.exists(path + leftover):
                os.unlink(path + leftover)
        assert as_unprivileged_user(lambda: SQLiteStore(path, read_only=True).close()) == (
            f"error: StoreError: cannot open SQLite store {path!r} read-only: it is in WAL "
            f"mode, so SQLite must create {path + '-shm'!r} beside it, but directory "
            f"{shared!r} is not writable"
        )
    finally:
        for name in os.listdir(shared):
            os.unlink(os.path.join(shared, name))
        os.rmdir(shared)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("mode=rx", "expected mode=ro or mode=rw"),
        ("timeout=0", "expected a positive number of seconds"),
        ("timeout=soon", "expected a positive number of seconds"),
        ("cache=shared", "unknown option 'cache'"),
    ],
)
def test_malformed_sqlite_options_name_the_option(tmp_path, query, message):
    url = f"sqlite:///{tmp_path / 'x.db'}?{query}"
    assert message in open_error(url) and url in open_error(url)
    assert not (tmp_path / "x.db").exists()


def test_a_busy_attempt_leaves_no_cursor_holding_the_file(tmp_path):
    # An attempt that fails while one of its cursors is unfinished must not keep that cursor
    # (and its lock) alive through the retry. Before a new file is switched to WAL mode an
    # unfinished read holds a SHARED lock that blocks every other process's commit: kept
    # alive by the failed attempt's traceback, it deadlocked four processes opening one new
    # file until their timeout (a CI failure).
    from culvert_py.store.sqlite_file import SQLiteFile

    path = str(tmp_path / "stale.db")
    with SQLiteFile(path, read_only=False, timeout=3.0) as file:
        file.transact(lambda db: db.execute("PRAGMA journal_mode=DELETE").fetchall(), False, "")
        file.transact(lambda db: db.execute("CREATE TABLE t (k INTEGER)"), True, "setup")
        file.transact(lambda db: db.execute("INSERT INTO t VALUES (1), (2), (3)"), True, "")
        other = sqlite3.connect(path, isolation_level=None, timeout=0.5)
        outcome = []

        def work(db):
            if not outcome:
                unfinished = db.execute("SELECT k FROM t")
                unfinished.fetchone()  # this connection now holds a SHARED lock
                outcome.append("busy")
                raise sqlite3.OperationalError("database is locked")
            try:
                other.execute("INSERT INTO t VALUES (4)")  # needs every SHARED lock gone
                outcome.append("written")
            except sqlite3.OperationalError as exc:
                outcome.append(str(exc))
            return len(db.execute("SELECT k FROM t").fetchall())

        assert file.transact(work, False, "read") == 4
        other.close()
    assert outcome == ["busy", "written"]
