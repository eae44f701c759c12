"""The ``culvert`` command end to end, as a subprocess, on SQLite and on the real HBase."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import STORE_KINDS, hbase_test_url

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=STORE_KINDS)
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cli.db'}"
    return hbase_test_url()


def culvert(url: str, *args: str, check: int | None = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "culvert_cli.main", "--store", url, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    if check is not None:
        assert proc.returncode == check, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture
def schema_file(tmp_path):
    """people.toml under a unique table name (the HBase store is shared by tests)."""
    name = f"cli_{uuid.uuid4().hex[:8]}"
    text = (ROOT / "schemas/examples/people.toml").read_text().replace("people", name)
    path = tmp_path / "people.toml"
    path.write_text(text)
    return name, path


def test_apply_load_query_get_verify(store_url, schema_file, tmp_path):
    name, path = schema_file
    out = culvert(store_url, "schema", "apply", str(path)).stdout
    assert f"created {name}.__idx.by_age" in out and f"index {name}.by_age: ACTIVE" in out
    try:
        data = tmp_path / "people.csv"
        data.write_text(
            "id,name,age,city,joined,active,bio\n"
            "u1,Ada,36,London,2013-01-01T10:00:00Z,true,Counts numbers\n"
            "u2,Grace,NA,Arlington,,false,Writes compilers\n"
            "u3,Bad,notanumber,Oslo,,,\n"
            "u4,Linus,54,Helsinki,2013-01-01T10:00:00,true,\n"
            "u5,Kim,40,London,,true,Plays go\n"
        )
        load = culvert(store_url, "load", name, str(data), "--null", "NA", check=2)
        assert "read 5 / loaded 3 / rejected 2" in load.stdout
        rejects = [
            json.loads(line) for line in Path(f"{data}.rejects.jsonl").read_text().splitlines()
        ]
        assert [r["line"] for r in rejects] == [4, 5]
        assert "age" in rejects[0]["reason"] and "joined" in rejects[1]["reason"]

        rows = culvert(
            store_url,
            "query",
            name,
            "city = 'London' AND age >= 30",
            "--format",
            "jsonl",
            "--order-by",
            "age",
        ).stdout.splitlines()
        parsed = [json.loads(line) for line in rows]
        assert [r["id"] for r in parsed] == ["u1", "u5"]
        assert parsed[0]["age"] == 36 and parsed[0]["active"] is True
        assert parsed[0]["joined"] == "2013-01-01T10:00:00Z" and parsed[1]["joined"] is None

        # Three rows: most queries are cheaper as a full scan; one matching none is not.
        plan = culvert(store_url, "query", name, "age > 90", "--explain").stdout
        assert "IndexScan" in plan and "by_age" in plan and "probe: by_age 0 entries" in plan
        got = culvert(store_url, "get", name, "u2", "--format", "jsonl").stdout
        assert json.loads(got)["age"] is None
        missing = culvert(store_url, "get", name, "u1", "nope", "--format", "jsonl", check=2)
        assert json.loads(missing.stdout)["id"] == "u1"
        assert missing.stderr == f"error: {name}: 1 key(s) not found: nope\n"

        listing = culvert(store_url, "index", "list", name).stdout
        assert "by_age" in listing and "ACTIVE" in listing
        verify = culvert(store_url, "index", "verify", name, "by_age").stdout
        assert "by_age" in verify
        ddl = culvert(store_url, "schema", "ddl", str(path)).stdout
        assert f"create '{name}.__idx.by_age'" in ddl and "SPLITS" in ddl
    finally:
        from culvert_py.client import connect

        with connect(store_url) as db:
            db.drop_table(name)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["query", "ghost", "a = 1"], "error: no schema applied"),
        (["schema", "apply", "/nonexistent.toml"], "error: /nonexistent.toml: cannot read"),
        (["index", "build", "t", "--shard", "3/2"], "error: --shard '3/2'"),
    ],
)
def test_user_errors_are_one_line_with_exit_2(tmp_path, args, message):
    proc = culvert(f"sqlite:///{tmp_path / 'e.db'}", *args, check=2)
    assert proc.stderr.startswith(message)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_query_syntax_error_names_the_position(store_url, schema_file):
    name, path = schema_file
    culvert(store_url, "schema", "apply", str(path))
    try:
        proc = culvert(store_url, "query", name, "agee > 3", check=2)
        assert "unknown column 'agee' at 1:1" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        from culvert_py.client import connect

        with connect(store_url) as db:
            db.drop_table(name)


def test_unreachable_hbase_and_bad_url():
    proc = culvert("hbase://127.0.0.1:1?retries=0", "info", check=2)
    assert "127.0.0.1:1" in proc.stderr and "hbase-local start" in proc.stderr
    proc = culvert("nonsense", "info", check=2)
    assert "accepted forms" in proc.stderr


def test_demo_runs_on_the_embedded_store():
    proc = culvert("sqlite://", "demo", "--rows", "400")
    assert proc.stdout.count("same rows: yes") == 5


def _people_csv(path: Path, n: int) -> dict[str, dict]:
    expected = {}
    with path.open("w") as f:
        f.write("id,name,age,city,bio\n")
        for i in range(n):
            row = {
                "id": f"k{i:06d}",
                "name": f"n{i}",
                "age": i % 97,
                "city": f"c{i % 13}",
                "bio": f"word{i % 7} other",
            }
            f.write(",".join(str(row[c]) for c in row) + "\n")
            expected[row["id"]] = row
    return expected


def test_kill_9_mid_load_then_resume_equals_a_clean_load(store_url, schema_file, tmp_path):
    import os
    import signal
    import time

    from culvert_py.client import connect
    from culvert_py.meta import Meta
    from culvert_py.store import open_store

    name, path = schema_file
    culvert(store_url, "schema", "apply", str(path))
    data = tmp_path / "big.csv"
    expected = _people_csv(data, 12_000)
    cmd = [
        sys.executable,
        "-m",
        "culvert_cli.main",
        "--store",
        store_url,
        "load",
        name,
        str(data),
        "--batch-size",
        "200",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = f"load:{name}:{data.resolve()}"
    try:
        with open_store(store_url) as store:
            meta = Meta(store)
            deadline = time.monotonic() + 120
            while meta.load_checkpoint(checkpoint) is None:
                assert proc.poll() is None, "the load finished before it could be killed"
                assert time.monotonic() < deadline, "no checkpoint within 120 s"
                time.sleep(0.05)
            os.kill(proc.pid, signal.SIGKILL)  # mid-batch, no cleanup of any kind
            proc.wait()
            done = json.loads(meta.load_checkpoint(checkpoint))
        assert 0 < done["loaded"] < len(expected)
        out = culvert(store_url, "load", name, str(data), "--resume", "--batch-size", "200").stdout
        assert "skipped" in out and "rejected 0" in out
        with connect(store_url) as db:
            table = db.table(name)
            got = {r["id"]: r for r in table.scan_rows()}
            assert got == expected  # exactly what a clean load gives
        verify = culvert(store_url, "index", "verify", name).stdout
        assert verify.count(": clean") == 5, verify
    finally:
        if proc.poll() is None:
            proc.kill()
        with connect(store_url) as db:
            db.drop_table(name)
