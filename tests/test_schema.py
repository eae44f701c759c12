"""Schema files: the issue's example loads as written; every mistake is named precisely."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema
import pytest

from culvert_py.errors import SchemaError
from culvert_py.schema import (
    load_schema,
    merge_schemas,
    parse_schema,
    plan_changes,
    schema_to_dict,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "schemas" / "examples").glob("*.toml"))
JSON_SCHEMA = json.loads((ROOT / "schemas" / "culvert-schema.json").read_text())


def people() -> dict:
    return tomllib.loads((ROOT / "schemas/examples/people.toml").read_text())


def test_people_example_loads_exactly_as_written():
    schema = load_schema(ROOT / "schemas/examples/people.toml")
    t = schema.table("people")
    assert (t.family, t.row_key, t.salt_buckets) == ("d", ("id",), 8)
    assert t.columns["joined"] == "datetime" and len(t.columns) == 8
    assert set(t.indexes) == {"by_city", "by_age", "by_city_joined", "bio_words", "active_by_score"}
    by_age = t.indexes["by_age"]
    assert (by_age.kind, by_age.columns, by_age.include) == ("range", ("age",), ("name",))
    assert t.indexes["by_city_joined"].columns == ("city", "joined")
    assert t.indexes["bio_words"].kind == "text"
    partial = t.indexes["active_by_score"]
    assert (partial.where, partial.salt, partial.buckets) == ("active = true", "value", 8)
    assert by_age.hbase_table == "people.__idx.by_age"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_matches_the_json_schema_and_loads(path):
    data = tomllib.loads(path.read_text())
    jsonschema.validate(data, JSON_SCHEMA)
    load_schema(path)


def test_round_trip_through_the_stored_form():
    schema = load_schema(ROOT / "schemas/examples/people.toml")
    again = parse_schema(json.loads(json.dumps(schema_to_dict(schema))))
    assert again == schema
    jsonschema.validate(schema_to_dict(schema), JSON_SCHEMA)


def mutate(path: str, value) -> dict:
    data = people()
    *parents, last = path.split(".")
    node = data["tables"]
    for part in parents:
        node = node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "people.indexes.by_age.columns",
            ["agee"],
            "people.indexes.by_age.columns: unknown column 'agee'",
        ),
        ("people.columns.age", "integer", "people.columns.age: unknown type 'integer'"),
        ("people.indexes.by_age.kind", "btree", "people.indexes.by_age.kind: unknown kind 'btree'"),
        (
            "people.indexes.by_age.include",
            ["nmae"],
            "people.indexes.by_age.include: unknown column 'nmae'",
        ),
        (
            "people.indexes.by_age.where",
            "agee > 3",
            "people.indexes.by_age.where: unknown column 'agee'",
        ),
        (
            "people.indexes.by_age.columns",
            ["age", "age"],
            "people.indexes.by_age.columns: duplicate column 'age'",
        ),
        ("people.row_key", ["id", "id"], "people.row_key: duplicate column 'id'"),
        ("people.row_key", None, "people.row_key: at least one column is required"),
        ("people.indexes.by_age.colums", ["age"], "people.indexes.by_age: unknown key 'colums'"),
        ("people.salt_buckets", 0, "people.salt_buckets: expected an integer from 1 to 256"),
        ("people.salt_buckets", 300, "people.salt_buckets: expected an integer from 1 to 256"),
        (
            "people.indexes.bio_words.columns",
            ["age"],
            "bio_words.columns: a text index takes exactly one str column",
        ),
        (
            "people.indexes.by_age.include",
            ["age"],
            "by_age.include: 'age' is already an indexed column",
        ),
        (
            "people.indexes.by_age.salt",
            "random",
            "people.indexes.by_age.salt: expected one of row, value",
        ),
        ("people.columns.bad-name", "int", "people.columns.bad-name: invalid name"),
        ("people.columns._v", "int", "people.columns._v: invalid name"),
        (
            "people.indexes.by_age.descending",
            ["name"],
            "by_age.descending: 'name' is not an indexed column",
        ),
        (
            "people.indexes.by_city_joined.descending",
            ["joined", "name"],
            "by_city_joined.descending: 'name' is not an indexed column",
        ),
        (
            "people.indexes.by_city.descending",
            ["city"],
            "people.indexes.by_city.descending: a term index has no order",
        ),
        (
            "people.indexes.bio_words.descending",
            ["bio"],
            "people.indexes.bio_words.descending: a text index has no order",
        ),
    ],
)
def test_validation_errors_name_the_file_and_the_key(path, value, message):
    with pytest.raises(SchemaError) as err:
        parse_schema(mutate(path, value), source="people.toml")
    assert str(err.value).startswith("people.toml: ")
    assert message in str(err.value)


def test_bad_toml_and_missing_files_are_schema_errors(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[tables.people]\nfamily = \n")
    with pytest.raises(SchemaError, match=r"broken.toml: not valid TOML"):
        load_schema(broken)
    dup = tmp_path / "dup.toml"
    dup.write_text('[tables.t.columns]\nid = "str"\nid = "int"\n')
    with pytest.raises(SchemaError, match=r"dup.toml: not valid TOML"):
        load_schema(dup)
    with pytest.raises(SchemaError, match="cannot read schema file"):
        load_schema(tmp_path / "absent.toml")


def test_compatible_changes_are_allowed_and_listed():
    applied = parse_schema(people())
    grown = people()
    grown["tables"]["people"]["columns"]["email"] = "str"
    grown["tables"]["people"]["indexes"]["by_email"] = {"kind": "term", "columns": ["email"]}
    grown["tables"]["pets"] = {"row_key": ["id"], "columns": {"id": "int"}}
    changes = plan_changes(applied, parse_schema(grown))
    assert [i.name for i in changes["new_indexes"]] == ["by_email"]
    assert [t.name for t in changes["new_tables"]] == ["pets"]
    assert changes["new_columns"] == [("people", "email")]
    assert plan_changes(applied, applied) == {
        "new_tables": [],
        "new_indexes": [],
        "new_columns": [],
    }
    # A file that leaves a table out leaves it alone: several files can share one store.
    only_pets = parse_schema({"tables": {"pets": grown["tables"]["pets"]}})
    assert plan_changes(applied, only_pets)["new_tables"][0].name == "pets"
    assert set(merge_schemas(applied, only_pets).tables) == {"people", "pets"}


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("people.columns.age", "float", "people.columns.age: cannot change type 'int' to 'float'"),
        (
            "people.indexes.by_age.columns",
            ["age", "city"],
            "people.indexes.by_age: cannot change an applied index",
        ),
        (
            "people.indexes.by_age.include",
            None,
            "people.indexes.by_age: cannot change an applied index",
        ),
        ("people.row_key", ["name"], "people.row_key: cannot change"),
        ("people.salt_buckets", 16, "people.salt_buckets: cannot change"),
        ("people.indexes.by_age", None, "people.indexes.by_age: removed from the schema file"),
        ("people.columns.bio", None, "people.columns.bio: cannot remove"),
    ],
)
def test_changes_that_would_corrupt_data_are_refused(path, value, message):
    applied = parse_schema(people())
    data = mutate(path, value)
    if path == "people.columns.bio":
        del data["tables"]["people"]["indexes"]["bio_words"]
    with pytest.raises(SchemaError, match=message):
        plan_changes(applied, parse_schema(data))


# -- adopted tables (existing = true) ----------------------------------------------------


def users() -> dict:
    return tomllib.loads((ROOT / "schemas/examples/users_existing.toml").read_text())


def adopted(path: str, value) -> dict:
    data = users()
    *parents, last = path.split(".")
    node = data["tables"]
    for part in parents:
        node = node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return data


def test_users_example_resolves_every_cell_and_codec():
    t = load_schema(ROOT / "schemas/examples/users_existing.toml").table("users")
    assert (t.existing, t.hbase_table, t.row_key_codec, t.row_key_delimiter) == (
        True,
        "users",
        "utf8",
        None,
    )
    assert t.columns["age"] == "int" and "user_id" not in t.cells
    assert t.cells == {
        "email": "info:email",
        "age": "info:age",
        "balance": "info:bal",
        "visits": "info:n",  # a bare qualifier is in the table's family
        "signup": "info:ts",
        "active": "info:on",
    }
    assert t.codecs == {
        "email": "utf8",
        "age": "int32",
        "balance": "float64",
        "visits": "text",
        "signup": "epoch_millis",
        "active": "bool",
    }


def test_adopted_defaults_are_the_column_name_and_the_first_codec():
    data = adopted("users.columns", {"user_id": "bytes", "n": "int", "when": "datetime"})
    del data["tables"]["users"]["row_key_codec"]
    t = parse_schema(data).table("users")
    assert t.cells == {"n": "info:n", "when": "info:when"}
    assert t.codecs == {"n": "int64", "when": "epoch_millis"}
    assert t.row_key_codec == "raw"  # a bytes key is its bytes


def test_native_tables_keep_their_definition_and_stored_form():
    t = parse_schema(people()).table("people")
    assert (t.existing, t.hbase_name, t.row_key_codec, t.row_key_delimiter) == (
        False,
        None,
        None,
        None,
    )
    assert (dict(t.cells), dict(t.codecs), t.hbase_table) == ({}, {}, "people")
    stored = schema_to_dict(parse_schema(people()))["tables"]["people"]
    assert set(stored) == {"family", "row_key", "salt_buckets", "columns", "indexes"}
    assert all(isinstance(v, str) for v in stored["columns"].values())


def test_adopted_tables_round_trip_through_the_stored_form():
    data = adopted("users.hbase_table", "crm:users")
    data["tables"]["users"]["row_key"] = ["region", "user_id"]
    data["tables"]["users"]["row_key_delimiter"] = "#"
    data["tables"]["users"]["columns"]["region"] = "str"
    data["tables"]["users"]["indexes"] = {"by_age": {"kind": "range", "columns": ["age"]}}
    schema = parse_schema(data)
    t = schema.table("users")
    assert (t.hbase_table, t.row_key_delimiter) == ("crm:users", "#")
    assert t.indexes["by_age"].hbase_table == "users.__idx.by_age"
    stored = json.loads(json.dumps(schema_to_dict(schema)))
    assert parse_schema(stored) == schema
    jsonschema.validate(stored, JSON_SCHEMA)
    assert plan_changes(schema, parse_schema(stored))["new_tables"] == []


def test_a_json_schema_refuses_cells_and_codecs_on_native_tables():
    data = mutate("people.columns.age", {"type": "int", "codec": "int32"})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, JSON_SCHEMA)
    jsonschema.validate(mutate("people.columns.age", {"type": "int"}), JSON_SCHEMA)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "users.columns.age",
            {"type": "int", "codec": "int8"},
            "users.columns.age.codec: 'int8' is not a codec of int "
            "(known: int64, int32, int16, text)",
        ),
        ("users.columns.age", {"type": "integer"}, "users.columns.age.type: unknown type"),
        ("users.columns.age", {"type": "int", "cel": "x"}, "users.columns.age: unknown key 'cel'"),
        (
            "users.columns.age",
            {"type": "int", "cell": "info:email"},
            "users.columns.age.cell: 'info:email' is already the cell of 'email'",
        ),
        (
            "users.columns.age",
            {"type": "int", "cell": "_culvert"},
            "users.columns.age.cell: 'info:_culvert' is culvert_py's version cell",
        ),
        ("users.columns.age", {"type": "int", "cell": ""}, "users.columns.age.cell: expected"),
        ("users.columns.age", {"type": "int", "cell": "info:"}, "users.columns.age.cell: expected"),
        (
            "users.columns.user_id",
            {"type": "str", "cell": "info:id"},
            "users.columns.user_id.cell: a row-key column lives in the row key",
        ),
        ("users.existing", "yes", "users.existing: expected true or false"),
        ("users.hbase_table", "bad name", "users.hbase_table: expected an HBase table name"),
        ("users.row_key_codec", "int8", "users.row_key_codec: unknown codec 'int8'"),
        (
            "users.row_key_codec",
            "int64",
            "users.row_key_codec: 'int64' needs a int row key column; 'user_id' is str",
        ),
        (
            "users.row_key_delimiter",
            "#",
            "users.row_key_delimiter: only a composite row key (several columns) is delimited",
        ),
        (
            "users.row_key",
            ["user_id", "visits"],
            "users.row_key_delimiter: a composite row key of an adopted table needs",
        ),
        (
            "users.row_key",
            ["user_id", "balance"],
            "users.row_key_delimiter: a composite row key of an adopted table needs",
        ),
    ],
)
def test_adopted_validation_errors_name_the_key(path, value, message):
    with pytest.raises(SchemaError) as err:
        parse_schema(adopted(path, value), source="users.toml")
    assert str(err.value).startswith("users.toml: ")
    assert message in str(err.value)


def test_composite_adopted_keys_take_str_and_int_parts_joined_as_text():
    data = adopted("users.row_key", ["user_id", "balance"])
    data["tables"]["users"]["row_key_delimiter"] = "#"
    data["tables"]["users"]["columns"]["balance"] = "float"
    with pytest.raises(SchemaError, match=r"users\.row_key: part 'balance' is float"):
        parse_schema(data)
    data["tables"]["users"]["row_key_codec"] = "int64"
    with pytest.raises(SchemaError, match="a composite row key is delimited UTF-8 text"):
        parse_schema(data)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("people.existing", False, None),
        ("people.hbase_table", "people2", "people.hbase_table: only an adopted table"),
        ("people.row_key_codec", "utf8", "people.row_key_codec: only an adopted table"),
        ("people.row_key_delimiter", "#", "people.row_key_delimiter: only an adopted table"),
        (
            "people.columns.age",
            {"type": "int", "codec": "int32"},
            "people.columns.age.codec: only an adopted table",
        ),
        (
            "people.columns.age",
            {"type": "int", "cell": "d:age"},
            "people.columns.age.cell: only an adopted table",
        ),
    ],
)
def test_native_tables_refuse_what_only_adopted_tables_declare(path, value, message):
    if message is None:
        assert parse_schema(mutate(path, value)) == parse_schema(people())
        return
    with pytest.raises(SchemaError, match=message):
        parse_schema(mutate(path, value))


def test_two_tables_cannot_be_one_hbase_table():
    data = people()
    data["tables"]["other"] = users()["tables"]["users"]
    data["tables"]["other"]["hbase_table"] = "people"
    with pytest.raises(SchemaError, match=r"other\.hbase_table: HBase table 'people' is already"):
        parse_schema(data)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("users.existing", None, "users.existing: cannot change True to False"),
        ("users.hbase_table", "crm:users", "users.hbase_table: cannot change None"),
        ("users.columns.age", {"type": "int", "cell": "info:age"}, "age.codec: cannot change"),
        (
            "users.columns.age",
            {"type": "int", "cell": "info:years", "codec": "int32"},
            "users.columns.age.cell: cannot change 'info:age' to 'info:years'",
        ),
        ("users.columns.user_id", "bytes", "users.row_key_codec: cannot change 'utf8' to 'raw'"),
    ],
)
def test_applied_adopted_settings_cannot_change(path, value, message):
    applied = parse_schema(users())
    data = adopted(path, value)
    if path == "users.existing":
        # A native table refuses adopted-only keys: what remains is the native reading.
        for key in ("hbase_table", "row_key_codec"):
            del data["tables"]["users"][key]
        data["tables"]["users"]["columns"] = {
            c: spec["type"] if isinstance(spec, dict) else spec
            for c, spec in data["tables"]["users"]["columns"].items()
        }
    if path == "users.columns.user_id":
        data["tables"]["users"]["row_key_codec"] = "raw"
    with pytest.raises(SchemaError, match=message):
        plan_changes(applied, parse_schema(data))


def test_new_columns_of_an_adopted_table_are_a_compatible_change():
    applied = parse_schema(users())
    grown = adopted("users.columns.tier", {"type": "int", "cell": "info:t", "codec": "int16"})
    assert plan_changes(applied, parse_schema(grown))["new_columns"] == [("users", "tier")]
