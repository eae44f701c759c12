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
