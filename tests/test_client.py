"""The facade: schema apply/drop through the one retry loop, and what a drop leaves behind."""

from __future__ import annotations

import threading
import uuid

from click.testing import CliRunner

from culvert_cli import main as cli
from culvert_py.client import Client
from culvert_py.layout import PRIMARY_BLOCK_SIZE, store_tables
from culvert_py.schema import parse_schema


def small_schema(name: str, with_index: bool = True) -> object:
    spec = {"row_key": ["id"], "columns": {"id": "str", "n": "int"}, "salt_buckets": 2}
    if with_index:
        spec["indexes"] = {"by_n": {"kind": "range", "columns": ["n"]}}
    return parse_schema({"tables": {name: spec}})


def test_a_dropped_table_leaves_no_statistics_or_states_behind(db):
    name = f"c_{uuid.uuid4().hex[:10]}"
    db.apply_schema(small_schema(name))
    table = db.table(name)
    table.put_many({"id": f"k{i}", "n": i} for i in range(50))
    assert table.refresh_stats().rows == 50
    db.drop_table(name)
    assert db.meta.load_stats(name) is None
    assert not [k for k in db.meta.load()[2] if k[0] == name]
    assert not [t for t in db.store.list_tables() if t == name or t.startswith(name + ".")]

    # Re-created under the same name: empty, planned without the old row counts.
    db.apply_schema(small_schema(name))
    again = db.table(name)
    assert again.stats() is None
    assert list(again.query("n >= 0")) == []
    db.drop_table(name)


def test_concurrent_applies_of_different_tables_all_land(store):
    names = [f"c_{uuid.uuid4().hex[:10]}" for _ in range(3)]
    errors: list[BaseException] = []

    def apply(name: str) -> None:
        try:
            with Client(store, workers=4, close_store=False) as client:
                client.apply_schema(small_schema(name))
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=apply, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with Client(store, workers=4, close_store=False) as client:
        applied = client.schema()
        assert set(names) <= set(applied.tables)
        for name in names:
            client.drop_table(name)


def test_schema_ddl_creates_what_apply_creates(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(
        '[tables.t]\nrow_key = ["id"]\nsalt_buckets = 4\n[tables.t.columns]\nid = "str"\n'
        'n = "int"\n[tables.t.indexes.by_n]\nkind = "range"\ncolumns = ["n"]\n'
    )
    result = CliRunner().invoke(cli.main, ["schema", "ddl", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    specs = store_tables(
        parse_schema(
            {
                "tables": {
                    "t": {
                        "row_key": ["id"],
                        "salt_buckets": 4,
                        "columns": {"id": "str", "n": "int"},
                        "indexes": {"by_n": {"kind": "range", "columns": ["n"]}},
                    }
                }
            }
        ).table("t")
    )
    for spec in specs:
        line = next(x for x in lines if x.startswith(f"create '{spec.name}'"))
        assert line.count("\\x") == len(spec.split_keys)
        assert (f"BLOCKSIZE => '{PRIMARY_BLOCK_SIZE}'" in line) == (spec.block_size is not None)
