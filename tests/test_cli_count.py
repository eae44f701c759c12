"""``culvert count`` end to end, as a subprocess, on SQLite and on the real HBase."""

from __future__ import annotations

import json

import pytest

from tests.test_cli import culvert, schema_file, store_url  # noqa: F401 (fixtures)

CSV = (
    "id,name,age,city,active,bio\n"
    "u1,Ada,36,London,true,Counts numbers\n"
    "u2,Grace,NA,Arlington,false,Writes compilers\n"
    "u3,Kim,40,London,true,Plays go\n"
    "u4,Linus,54,NA,true,NA\n"
    'u5,Nat,31,"Oslo, Norway",,Plays chess\n'
)


def test_count_totals_groups_formats_and_explain(store_url, schema_file, tmp_path):  # noqa: F811
    name, path = schema_file
    culvert(store_url, "schema", "apply", str(path))
    try:
        data = tmp_path / "people.csv"
        data.write_text(CSV)
        culvert(store_url, "load", name, str(data), "--null", "NA")

        table = culvert(store_url, "count", name, "age >= 31")
        assert table.stdout.split() == ["count", "-----", "4"]
        assert table.stderr.startswith("(") and " ms)" in table.stderr
        assert culvert(store_url, "count", name).stdout.split()[-1] == "5"

        jsonl = culvert(store_url, "count", name, "--group-by", "city", "--format", "jsonl")
        groups = [json.loads(line) for line in jsonl.stdout.splitlines()]
        assert groups == [
            {"city": None, "count": 1},
            {"city": "Arlington", "count": 1},
            {"city": "London", "count": 2},
            {"city": "Oslo, Norway", "count": 1},
        ]
        plan = culvert(store_url, "count", name, "age > 30", "--explain").stdout
        assert plan.startswith(f"Aggregate count of {name} where age > 30 from index entries")
        assert "by_age" in plan and "(covered, no primary fetch)" in plan
        if store_url.startswith("sqlite"):  # rendering: the same code on every store
            csv = culvert(
                store_url, "count", name, "age > 30", "--group-by", "city", "--format", "csv",
                "--null", "NA",
            )  # fmt: skip
            want = ["city,count", "NA,1", "London,2", '"Oslo, Norway",1']
            assert csv.stdout.splitlines() == want
            shown = culvert(store_url, "count", name, "--group-by", "city").stdout.splitlines()
            assert shown[0].split() == ["city", "count"] and shown[4].split() == ["London", "2"]
            where = "city = 'London' AND age > 3"
            plan = culvert(store_url, "count", name, where, "--analyze").stdout
            assert "from rows" in plan and "| result 2" in plan and "actual" in plan
    finally:
        from culvert_py.client import connect

        with connect(store_url) as db:
            db.drop_table(name)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["count", "T", "agee > 3"], "error: unknown column 'agee' at 1:1"),
        (["count", "T", "--group-by", "nope"], "error: T: count: unknown column 'nope'"),
        (["count", "T", "age >"], "error: "),
        (["count", "ghost"], "error: unknown table 'ghost'"),
        (["count", "T", "--format", "xml"], "error: --format: 'xml' is not one of"),
        (["count", "T", "--null", "a,b"], "error: --null 'a,b'"),
    ],
)
def test_count_bad_input_is_one_error_line_with_exit_2(tmp_path, schema_file, args, message):  # noqa: F811
    name, path = schema_file
    url = f"sqlite:///{tmp_path / 'e.db'}"
    culvert(url, "schema", "apply", str(path))
    proc = culvert(url, *[name if a == "T" else a for a in args], check=2)
    assert proc.stderr.startswith(message.replace("T:", f"{name}:")), proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
