"""The meta table: one retry loop for schema changes, states, documents, checkpoints."""

from __future__ import annotations

import threading
import uuid

import pytest

from culvert_py.errors import SchemaError
from culvert_py.meta import ACTIVE, BUILDING, SCHEMA_RETRIES, Meta, SchemaConflict
from culvert_py.schema import Schema, merge_schemas, parse_schema


def one_table(name: str) -> Schema:
    return parse_schema(
        {
            "tables": {
                name: {
                    "row_key": ["id"],
                    "columns": {"id": "str", "n": "int"},
                    "indexes": {"by_n": {"kind": "range", "columns": ["n"]}},
                }
            }
        }
    )


@pytest.fixture
def meta(store):
    """A Meta over ``store`` whose tables the test names uniquely (HBase is shared)."""
    m = Meta(store)
    m.ensure()
    return m


def _add(name: str, state: str = ACTIVE):
    def change(applied, _states):
        return merge_schemas(applied, one_table(name)), {(name, "by_n"): state}

    return change


def _forget(names: list[str]):
    def change(applied, _states):
        tables = {n: t for n, t in (applied.tables if applied else {}).items() if n not in names}
        return Schema(tables), {}

    return change


def test_update_applies_a_change_and_bumps_the_generation(meta):
    name = f"m_{uuid.uuid4().hex[:8]}"
    before = meta.generation()
    generation = meta.update(_add(name, BUILDING))
    assert generation > before
    g, schema, states = meta.load()
    assert g == generation
    assert name in schema.tables
    assert states[(name, "by_n")] == BUILDING
    meta.update(_forget([name]))


def test_concurrent_updates_all_land_by_replanning_on_top(meta):
    names = [f"m_{uuid.uuid4().hex[:8]}" for _ in range(6)]
    calls: list[str] = []
    errors: list[BaseException] = []

    def apply(name):
        def change(applied, states):
            calls.append(name)
            return _add(name)(applied, states)

        try:
            meta.update(change)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=apply, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    _, schema, states = meta.load()
    assert set(names) <= set(schema.tables), "a concurrent change was lost"
    assert all(states[(n, "by_n")] == ACTIVE for n in names)
    assert len(calls) >= len(names)
    meta.update(_forget(names))


def test_update_gives_up_with_a_schema_error_when_it_keeps_losing(meta):
    rounds = []

    def change(applied, states):
        rounds.append(1)
        # Another writer bumps the generation between our read and our write, every time.
        meta.save(meta.generation(), applied or Schema({}), {})
        return applied or Schema({}), {}

    with pytest.raises(SchemaError, match="kept changing") as info:
        meta.update(change, "test change")
    assert "test change" in str(info.value)
    assert len(rounds) == SCHEMA_RETRIES


def test_save_refuses_a_stale_generation(meta):
    generation = meta.generation()
    meta.save(generation, meta.load()[1] or Schema({}), {})
    with pytest.raises(SchemaConflict):
        meta.save(generation, meta.load()[1] or Schema({}), {})


def test_set_state_validates_and_records_the_time(meta):
    name = f"m_{uuid.uuid4().hex[:8]}"
    meta.update(_add(name, BUILDING))
    with pytest.raises(SchemaError, match="unknown state"):
        meta.set_state(name, "by_n", "RUNNING")
    meta.set_state(name, "by_n", ACTIVE)
    state, ts = meta.state_since(name, "by_n")
    assert state == ACTIVE and ts > 0
    meta.delete_state(name, "by_n")
    assert meta.state_since(name, "by_n") is None
    meta.update(_forget([name]))


def test_load_ignores_documents_statistics_and_checkpoints(meta):
    name = f"m_{uuid.uuid4().hex[:8]}"
    meta.update(_add(name))
    meta.save_stats(name, '{"x": 1}')
    meta.save_checkpoint(f"load:{name}", "{}")
    meta.save_doc("build", f"{name}.by_n", "{}")
    _, schema, states = meta.load()
    assert name in schema.tables
    assert all(isinstance(k, tuple) and len(k) == 2 for k in states)
    meta.clear_checkpoint(f"load:{name}")
    meta.delete_doc("build", f"{name}.by_n")
    meta.update(_forget([name]))


def test_create_only_documents_are_created_once(meta):
    kind, name = "test-doc", uuid.uuid4().hex
    assert meta.save_doc(kind, name, "first", create=True) is not None
    assert meta.save_doc(kind, name, "second", create=True) is None
    assert meta.load_doc(kind, name)[0] == "first"
    assert set(meta.load_docs(kind, name[:6])) >= {name}
    assert meta.delete_docs(kind, name) == 1
    assert meta.load_doc(kind, name) is None
    with pytest.raises(ValueError, match="reserved"):
        meta.save_doc("schema", "x", "{}")


def test_a_checkpoint_saved_right_after_a_clear_survives(meta):
    name = f"job:{uuid.uuid4().hex}"
    for round_ in range(20):
        meta.save_checkpoint(name, str(round_))
        meta.clear_checkpoint(name)
        meta.save_checkpoint(name, f"after {round_}")
        assert meta.load_checkpoint(name) == f"after {round_}"
    meta.clear_checkpoint(name)
    assert meta.load_checkpoint(name) is None


def test_a_schema_from_a_newer_client_names_the_key_and_says_to_upgrade(tmp_path):
    # On a store of its own: a schema this client cannot read would break every other
    # client sharing the dev HBase's meta table, which is the very case this message is for.
    import json

    from culvert_py.meta import _JSON, _SCHEMA_ROW, META_TABLE
    from culvert_py.schema import schema_to_json
    from culvert_py.store import open_store
    from culvert_py.store.base import RowMutation

    with open_store(f"sqlite:///{tmp_path}/newer.db") as private:
        meta = Meta(private)
        meta.ensure()
        meta.update(_add("people"), "test")
        assert meta.load()[1].tables["people"].name == "people"
        data = json.loads(schema_to_json(meta.load()[1]))
        data["tables"]["people"]["compaction"] = "weekly"  # a key from some later version
        row = RowMutation(_SCHEMA_ROW, {_JSON: json.dumps(data).encode()})
        private.table(META_TABLE).mutate_many([row], 10**13)
        with pytest.raises(SchemaError) as err:
            meta.load()
        text = str(err.value)
        assert "people" in text and "'compaction'" in text and "newer culvert_py" in text
