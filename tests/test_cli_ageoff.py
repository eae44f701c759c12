"""``culvert ageoff`` end to end, as a subprocess, on SQLite and on the real HBase."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from culvert_py.client import connect
from tests.test_cli import ROOT, culvert, store_url  # noqa: F401 (store_url is a fixture)


@pytest.fixture
def events(store_url, tmp_path):  # noqa: F811
    """The events example under a unique name, with 30 expired rows and 20 live ones."""
    name = f"ev_{uuid.uuid4().hex[:8]}"
    text = (ROOT / "schemas/examples/events.toml").read_text().replace("events", name)
    path = tmp_path / "events.toml"
    path.write_text(text)
    culvert(store_url, "schema", "apply", str(path))
    with connect(store_url) as db:
        old, future = datetime(2001, 1, 1, tzinfo=UTC), datetime(2999, 1, 1, tzinfo=UTC)
        rows = [{"id": f"e{i:02}", "kind": "ab"[i % 2], "event_time": old} for i in range(30)]
        rows += [{"id": f"f{i:02}", "kind": "ab"[i % 2], "event_time": future} for i in range(20)]
        db.table(name).put_many(rows)
    yield name, path
    with connect(store_url) as db:
        db.drop_table(name)


def test_ageoff_dry_run_explains_the_plan_then_ageoff_deletes(store_url, events):  # noqa: F811
    name, _ = events
    assert "0 rows" not in culvert(store_url, "query", name, "kind = 'a'").stdout
    dry = culvert(store_url, "ageoff", name, "--dry-run").stdout
    assert f"range scan of index {name}.by_time" in dry and "IndexScan" in dry
    assert "30 expired row(s) of 30 examined" in dry and "nothing deleted" in dry
    out = culvert(store_url, "ageoff", name).stdout
    assert "30 row(s) deleted of 30 found expired (30 examined; 0 rewritten" in out
    assert "0 expired" in culvert(store_url, "ageoff", name, "--dry-run").stdout
    verify = culvert(store_url, "index", "verify", name, "by_time").stdout
    assert "clean: 20 rows and 20 entries" in verify


BAD_INPUT = [
    (["ageoff", "no_such_table"], "unknown table 'no_such_table'"),
    (["ageoff", "{table}", "--workers", "0"], "--workers: 0 is not in the range x>=1"),
    (["ageoff", "{table}", "--dry-run=maybe"], "--dry-run"),
    (["ageoff"], "missing argument 'TABLE'"),
]


def test_ageoff_bad_input_is_one_error_line(store_url, events):  # noqa: F811
    name, _ = events
    for args, message in BAD_INPUT:
        proc = culvert(store_url, *[a.format(table=name) for a in args], check=2)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
        assert "Traceback" not in proc.stderr
    shown = culvert(store_url, "schema", "show", name).stdout
    assert '"age_off": {' in shown and '"after": "90d"' in shown  # the applied lifespan


def test_bad_lifespan_or_none_at_all_is_one_error_line(store_url, tmp_path):  # noqa: F811
    name = f"plain_{uuid.uuid4().hex[:8]}"
    path = tmp_path / "bad.toml"
    columns = f'[tables.{name}]\nrow_key = ["id"]\n[tables.{name}.columns]\nid = "str"\n'
    path.write_text(columns.replace('["id"]\n', '["id"]\nttl = "90 days"\n'))
    proc = culvert(store_url, "schema", "apply", str(path), check=2)
    assert proc.stderr.strip() == (
        f"error: {path}: {name}.ttl: expected a duration like '90d', '12h', '30m' or '45s', "
        "got '90 days'"
    )
    path.write_text(columns)
    culvert(store_url, "schema", "apply", str(path))
    try:
        proc = culvert(store_url, "ageoff", name, check=2)
        assert proc.stderr.startswith(f"error: {name}: no ttl or age_off in its schema")
        assert len(proc.stderr.strip().splitlines()) == 1
    finally:
        with connect(store_url) as db:
            db.drop_table(name)
