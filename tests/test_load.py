"""The batch loader: typed rows from CSV and JSON Lines, rejects, checkpoints and resume.

The expected table contents are computed here, independently of the loader (a dict of the
typed rows each good line stands for, later lines winning), and compared with what the
table holds afterwards — through full scans, key reads and index queries — on SQLite and on
the real HBase. Tests that exercise only parsing or bookkeeping run on SQLite alone, to keep
the HBase run short.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import threading
import time
import tomllib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from culvert_cli.main import main
from culvert_py.client import Client
from culvert_py.errors import ArgumentError, EncodingError, LoadError, StoreError
from culvert_py.layout import primary_key
from culvert_py.load import MAX_CELL_BYTES, LoadReport, load_file, parse_key
from culvert_py.ops import verify_index
from culvert_py.schema import parse_schema
from culvert_py.store import open_store
from culvert_py.write import _Change

from .conftest import PEOPLE_TOML
from .oracle import assert_indexes_exact

HEADER = "id,name,age,score,city,joined,active,bio"
BIG = "x" * (MAX_CELL_BYTES + 10)


def write(path: Path, lines: list[str | bytes], newline: bytes = b"\n") -> Path:
    """Write lines as bytes (so a test can plant bad UTF-8 and CRLF exactly)."""
    with open(path, "wb") as f:
        for line in lines:
            f.write((line if isinstance(line, bytes) else line.encode()) + newline)
    return path


def rejects_of(report: LoadReport) -> dict[int, dict]:
    assert report.rejects_path is not None
    with open(report.rejects_path, encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    assert [set(d) for d in docs] == [{"line", "raw", "reason"}] * len(docs)
    return {d["line"]: d for d in docs}


def comparable(row: dict | None) -> dict | None:
    """NaN != NaN: compare it as a marker."""
    if row is None:
        return None
    return {k: "NaN" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


def table_rows(table) -> dict[str, dict]:
    return {r["id"]: comparable(r) for r in table.scan_rows()}


@pytest.fixture
def local_db(tmp_path):
    """A client on a fresh SQLite store: for tests whose subject is not the store."""
    with open_store(f"sqlite:///{tmp_path / 'local.db'}") as store:
        client = Client(store, close_store=False)
        yield client
        client.close()


@pytest.fixture
def local_people(local_db):
    with open(PEOPLE_TOML, "rb") as f:
        data = tomllib.load(f)
    local_db.apply_schema(parse_schema(data))
    return local_db.table("people")


@pytest.fixture
def typed(local_db):
    """A table with a column of every type and a composite (int, datetime) row key."""
    columns = {
        "k": "int",
        "t": "datetime",
        "i": "int",
        "f": "float",
        "s": "str",
        "b": "bytes",
        "flag": "bool",
    }
    local_db.apply_schema(
        parse_schema({"tables": {"typed": {"row_key": ["k", "t"], "columns": columns}}})
    )
    return local_db.table("typed")


# -- formats, values, rejects (both stores) ---------------------------------------------------


def test_csv_loads_good_rows_and_rejects_every_bad_kind(people, tmp_path):
    path = write(
        tmp_path / "people.csv",
        [
            HEADER,
            "a1,Ada,36,1.5,London,2024-01-01T10:00:00Z,true,plain words",
            'a2,"Lovelace, Ada",-7,inf,Oslo,2024-02-01T12:00:00+02:00,YES,"two',
            'lines, ""quoted"""',
            "a3,Bob,,nan,,,0,",
            b"a4,Cy,12,-0,Paris,2024-03-01 00:00:00Z,No,crlf\r",
            "b1,Bad,1.5,1,Oslo,,true,",
            "b2,Bad,1,1,Oslo,,maybe,",
            "b3,Bad,1,1,Oslo,2024-01-01T10:00:00,true,",
            ",NoKey,1,1,Oslo,,true,",
            b"b4,Bad\xff,1,1,Oslo,,true,",
            f"b5,Big,1,1,Oslo,,true,{BIG}",
            "b6,Short,1",
            'b7,"Bad"quote,1,1,Oslo,,true,',
            "",
            "a5,Last,99,2.5,Oslo,,false,after a blank line",
            'b8,"never closed,1,1,Oslo,,true,',
            "a6,Resynced,1,1,Oslo,,1,",
        ],
    )
    report = load_file(people, path, batch_size=3)

    assert (report.read, report.loaded, report.rejected, report.skipped) == (15, 6, 9, 0)
    assert report.rejects_path == f"{path}.rejects.jsonl"
    rejects = rejects_of(report)
    expected_reasons = {
        7: "column 'age': expected int, got '1.5'",
        8: "column 'active': expected bool",
        9: "column 'joined': datetime '2024-01-01T10:00:00' has no UTC offset",
        10: "row-key column 'id' is NULL",
        11: "not valid utf-8: byte(s) ff",
        12: f"column 'bio': value takes {len(BIG) + 3:,} bytes encoded",
        13: "malformed CSV: expected 8 fields (as the header), got 3",
        14: "malformed CSV: field 2: 'q' after a closing quote",
        17: "malformed CSV: unterminated quoted field",
    }
    assert sorted(rejects) == sorted(expected_reasons)
    for line, reason in expected_reasons.items():
        assert rejects[line]["reason"].startswith(reason), rejects[line]
        assert "\n" not in rejects[line]["reason"]
    assert rejects[7]["raw"] == "b1,Bad,1.5,1,Oslo,,true,"
    assert rejects[11]["raw"] == "b4,Bad\\xff,1,1,Oslo,,true,"

    utc = UTC
    expected = {
        "a1": {
            "id": "a1", "name": "Ada", "age": 36, "score": 1.5, "city": "London",
            "joined": datetime(2024, 1, 1, 10, tzinfo=utc), "active": True, "bio": "plain words",
        },
        "a2": {
            "id": "a2", "name": "Lovelace, Ada", "age": -7, "score": math.inf, "city": "Oslo",
            "joined": datetime(2024, 2, 1, 10, tzinfo=utc), "active": True,
            "bio": 'two\nlines, "quoted"',
        },
        "a3": {"id": "a3", "name": "Bob", "score": "NaN", "active": False},
        "a4": {
            "id": "a4", "name": "Cy", "age": 12, "score": 0.0, "city": "Paris",
            "joined": datetime(2024, 3, 1, tzinfo=utc), "active": False, "bio": "crlf",
        },
        "a5": {
            "id": "a5", "name": "Last", "age": 99, "score": 2.5, "city": "Oslo",
            "active": False, "bio": "after a blank line",
        },
        "a6": {"id": "a6", "name": "Resynced", "age": 1, "score": 1.0, "city": "Oslo",
               "active": True},
    }  # fmt: skip
    assert table_rows(people) == expected
    got = people.get_many(["a2", "b1", "a6"])
    assert [comparable(r) for r in got] == [expected["a2"], None, expected["a6"]]
    # The rows went through the write protocol: the indexes find them.
    assert sorted(r["id"] for r in people.query("city = 'Oslo'")) == ["a2", "a5", "a6"]
    assert sorted(r["id"] for r in people.query("age >= 36")) == ["a1", "a5"]


def test_jsonl_loads_good_rows_and_rejects_every_bad_kind(people, tmp_path):
    big = json.dumps({"id": "b7", "bio": BIG})
    path = write(
        tmp_path / "people.jsonl",
        [
            '{"id": "j1", "name": "Ann", "age": 30, "score": 2, "city": "Rome", '
            '"joined": "2024-01-01T00:00:00Z", "active": true, "bio": null}',
            '{"id": "j2", "age": -1, "score": 1e308}',
            '{"id": "b1", "age": 3.0}',
            '{"id": "b2", "active": "true"}',
            '{"id": "b3", "nickname": "x"}',
            '{"name": "no id"}',
            '{"id": "b4", "joined": "2024-01-01"}',
            big,
            '{"id": "b5",',
            "[1, 2]",
            b'{"id": "b6\xc3"}',
            "   ",
            '{"id": "j3", "joined": "2024-06-01T08:30:00.123456-01:00", "score": NaN}',
            '{"id": null}',
            '{"id": "b8", "age": 9223372036854775808}',
        ],
    )
    report = load_file(people, path, batch_size=2)

    assert (report.read, report.loaded, report.rejected) == (14, 3, 11)
    rejects = rejects_of(report)
    expected_reasons = {
        3: "column 'age': expected int, got float 3.0",
        4: "column 'active': expected bool, got str 'true'",
        5: "unknown column(s) 'nickname' (known: id, name, age, score",
        6: "row-key column 'id' is missing",
        7: "column 'joined': datetime '2024-01-01' has no UTC offset",
        8: "column 'bio': value takes",
        9: "malformed JSON: ",
        10: "expected a JSON object, got list [1, 2]",
        11: "not valid utf-8",
        14: "row-key column 'id' is NULL",
        15: "column 'age': int 9223372036854775808 out of range",
    }
    assert sorted(rejects) == sorted(expected_reasons)
    for line, reason in expected_reasons.items():
        assert rejects[line]["reason"].startswith(reason), rejects[line]
    assert rejects[9]["raw"] == '{"id": "b5",'
    assert table_rows(people) == {
        "j1": {
            "id": "j1", "name": "Ann", "age": 30, "score": 2.0, "city": "Rome",
            "joined": datetime(2024, 1, 1, tzinfo=UTC), "active": True,
        },
        "j2": {"id": "j2", "age": -1, "score": 1e308},
        "j3": {
            "id": "j3", "score": "NaN",
            "joined": datetime(2024, 6, 1, 9, 30, 0, 123456, tzinfo=UTC),
        },
    }  # fmt: skip
    assert [r["id"] for r in people.query("city = 'Rome'")] == ["j1"]


# -- crash and resume (both stores) -----------------------------------------------------------


class Crash(Exception):
    """Stands for the process dying."""


def crash_file(tmp_path: Path) -> tuple[Path, dict[str, dict], list[int]]:
    """400 records, keys repeating (the later line wins), every 37th line bad.

    :return: the file, the rows a load must leave, and the line numbers of the bad records
    """
    lines, expected, bad = [HEADER], {}, []
    base = datetime(2020, 1, 1, tzinfo=UTC)
    for i in range(400):
        key = f"r{i % 300:04d}"
        line_number = len(lines) + 1
        if i % 37 == 5:
            lines.append(f"{key},Bad,oops,1,c0,,true,")
            bad.append(line_number)
            continue
        joined = base + timedelta(hours=i)
        lines.append(
            f"{key},n{i},{i},{i / 4},c{i % 7},{joined.isoformat()},{i % 2},word{i % 5} text"
        )
        expected[key] = {
            "id": key, "name": f"n{i}", "age": i, "score": i / 4, "city": f"c{i % 7}",
            "joined": joined, "active": bool(i % 2), "bio": f"word{i % 5} text",
        }  # fmt: skip
    return write(tmp_path / "crash.csv", lines), expected, bad


def test_crash_then_resume_converges_to_a_clean_load(people, tmp_path):
    path, expected, bad = crash_file(tmp_path)

    calls = []

    def die_after_three_batches(done: int, total: int) -> None:
        calls.append((done, total))
        if len(calls) == 3:
            raise Crash

    with pytest.raises(Crash):
        load_file(people, path, batch_size=25, progress=die_after_three_batches)
    assert calls[-1][1] == os.path.getsize(path)
    assert 0 < calls[0][0] < calls[1][0] < calls[2][0] < calls[2][1]

    # The second run dies inside a batch: index entries written, primary row not yet.
    steps = []

    def die_in_the_fourth_primary_write(step: str) -> None:
        steps.append(step)
        if steps.count("primary") == 4 and step == "primary":
            raise Crash

    people.writer.on_step = die_in_the_fourth_primary_write
    with pytest.raises(Crash):
        load_file(people, path, batch_size=25, resume=True)
    people.writer.on_step = None

    report = load_file(people, path, batch_size=25, resume=True)
    assert report.skipped > 75  # three batches, then at least one more
    assert report.skipped + report.read == 400
    assert report.loaded + report.rejected == report.read
    # Rejects of batches that were read again were not listed twice, and the counts of the
    # runs add up to what the rejects file holds.
    assert sorted(rejects_of(report)) == bad
    assert report.rejected_earlier + report.rejected == len(bad)
    assert report.rejected_earlier > 0
    assert f"rejected {report.rejected} ({len(bad)} with earlier runs)" in report.summary()
    assert table_rows(people) == expected

    # A clean load of the same file over it changes nothing, and the indexes agree.
    clean = load_file(people, path, batch_size=25)
    assert (clean.read, clean.loaded, clean.rejected, clean.skipped) == (400, 400 - 11, 11, 0)
    assert sorted(rejects_of(clean)) == bad
    assert table_rows(people) == expected
    for city in ("c0", "c3"):
        want = sorted(k for k, r in expected.items() if r["city"] == city)
        assert sorted(r["id"] for r in people.query(f"city = '{city}'")) == want
    assert sorted(r["id"] for r in people.query("age >= 390")) == sorted(
        k for k, r in expected.items() if r["age"] >= 390
    )


# -- bulk loads over keys that exist (both stores) --------------------------------------------


def bulk_person(i: int, rnd: random.Random) -> dict:
    return {
        "id": f"p{i:04d}",
        "name": rnd.choice([None, "Ada", "Grace"]),
        "age": rnd.choice([None, 17, 30, 65]),
        "score": rnd.choice([None, -1.5, 2.5]),
        "city": rnd.choice([None, "Oslo", "Lima"]),
        "joined": rnd.choice([None, datetime(2013, 1, 1, tzinfo=UTC)]),
        "active": rnd.choice([None, True, False]),
        "bio": rnd.choice([None, "likes graphs", "writes compilers"]),
    }


def csv_of(path: Path, rows: list[dict], columns: list[str]) -> Path:
    """A CSV of simple values (no commas or quotes), NULL as an empty field."""

    def text(value) -> str:
        if value is None:
            return ""
        return value.isoformat() if isinstance(value, datetime) else str(value)

    return write(path, [",".join(columns), *(",".join(text(r[c]) for c in columns) for r in rows)])


def assert_clean(report) -> None:
    assert (report.missing, report.orphan, report.wrong_covered) == (0, 0, 0), report.summary()
    assert report.clean


def test_bulk_load_twice_with_changed_values_leaves_exact_indexes(
    db, people, tmp_path, monkeypatch
):
    rnd = random.Random(8)
    columns = HEADER.split(",")
    first = [bulk_person(i, rnd) for i in range(120)]
    reads = []
    primary = people.writer.primary
    get_many = primary.get_many
    monkeypatch.setattr(primary, "get_many", lambda *a, **k: reads.append(1) or get_many(*a, **k))
    report = load_file(people, csv_of(tmp_path / "1.csv", first, columns), bulk=True, batch_size=50)
    monkeypatch.undo()
    # New keys: one read (of version cells) per batch, none per row, nothing already there.
    assert (report.loaded, report.existed, len(reads)) == (120, 0, 3)
    assert "already existed" not in report.summary()

    # The second file changes the indexed values of 80 existing rows, names only some
    # columns (the others must be kept), adds 40 new rows and repeats one key at its end.
    part = ["id", "age", "city", "joined", "bio"]
    changed = [{**bulk_person(i, rnd), "age": 40 + i % 3} for i in range(40, 160)]
    second = [*changed, {**changed[5], "city": "Pune"}]
    path = csv_of(tmp_path / "2.csv", second, part)
    out = CliRunner().invoke(
        main, ["--store", people.store.url, "load", people.name, str(path), "--bulk",
               "--batch-size", "50"], catch_exceptions=False,
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    # 80 rows existed before the load, and the repeat existed when its batch came.
    assert "read 121 / loaded 121 / rejected 0" in out.stdout
    assert "81 row(s) already existed: written in safe mode" in out.stdout

    expected = {r["id"]: dict(r) for r in first}
    for row in second:
        expected.setdefault(row["id"], {c: None for c in columns}).update({c: row[c] for c in part})
    live = {k: {c: v for c, v in r.items() if v is not None} for k, r in expected.items()}
    assert table_rows(people) == live
    assert assert_indexes_exact(people, [*first, *expected.values()]) > 0
    for index in people.definition.indexes:
        assert_clean(verify_index(db, people.name, index, workers=2))


def test_bulk_put_many_over_existing_and_deleted_keys_is_exact(people, monkeypatch):
    rows = [{"id": f"e{i}", "age": i % 4, "city": "Oslo", "name": "Ada"} for i in range(30)]
    people.put_many(rows[:20])
    # A tombstone written by a client whose clock ran an hour fast: a bulk write of the key
    # must land above it, or the row stays deleted.
    future = time.time_ns() + 3600 * 10**9
    monkeypatch.setattr(time, "time_ns", lambda: future)
    people.delete("e0")
    monkeypatch.undo()
    updates = [{**r, "age": r["age"] + 10, "city": "Lima"} for r in rows]
    assert people.put_many(updates, bulk=True) == 30
    assert table_rows(people) == {r["id"]: r for r in updates}
    assert_indexes_exact(people, rows + updates)


def test_verify_flags_the_stale_entries_of_an_insert_only_bulk_write(db, people):
    """What bulk did before it looked for existing keys (the writer's no-read attempt, still
    there for new keys) leaves the old entries verified: verify must see them, repair fix."""
    rows = [{"id": f"s{i:02d}", "age": 20 + i % 5, "name": "Ada"} for i in range(30)]
    people.put_many(rows)
    moved = [{**r, "age": r["age"] + 50} for r in rows[:10]]
    writer = people.writer
    writer._attempt([_Change(primary_key(people.definition, r), r) for r in moved], True)

    # settle_seconds=0: the stale entries are seconds old, and verify counts an unowned entry
    # as a write in flight until it settles.
    found = verify_index(db, people.name, "by_age", workers=2, settle_seconds=0)
    assert (found.orphan, found.missing, found.wrong_covered) == (10, 0, 0), found.summary()
    assert not found.clean
    with pytest.raises(AssertionError, match="by_age"):
        assert_indexes_exact(people, rows + moved)
    fixed = verify_index(db, people.name, "by_age", repair=True, workers=2, settle_seconds=0)
    assert fixed.repaired == 10
    assert_clean(verify_index(db, people.name, "by_age", workers=2))
    assert_indexes_exact(people, rows + moved)


# -- SQLite only: bookkeeping and parsing ------------------------------------------------------


def test_resume_of_a_changed_file_is_refused(local_people, tmp_path):
    path, _, _ = crash_file(tmp_path)

    def die(done: int, total: int) -> None:
        raise Crash

    with pytest.raises(Crash):
        load_file(local_people, path, batch_size=25, progress=die)
    with pytest.raises(LoadError, match="started with null None, not 'NA'; resume with the same"):
        load_file(local_people, path, batch_size=25, resume=True, null_token="NA")
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(LoadError, match="changed since the checkpoint"):
        load_file(local_people, path, batch_size=25, resume=True)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with open(path, "a") as f:
        f.write("r9999,Late,1,1,c1,,true,\n")
    with pytest.raises(LoadError, match=r"changed since the checkpoint \(size [\d,]+ -> [\d,]+"):
        load_file(local_people, path, batch_size=25, resume=True)


def test_resume_without_checkpoint_loads_everything(local_people, tmp_path):
    path, expected, bad = crash_file(tmp_path)
    report = load_file(local_people, path, resume=True)
    assert (report.read, report.skipped, report.rejected) == (400, 0, len(bad))
    assert table_rows(local_people) == expected


def test_later_line_wins_for_a_key_repeated_across_batches_in_flight(local_people, tmp_path):
    path = write(tmp_path / "same.csv", ["id,age", *(f"k,{i}" for i in range(60))])
    load_file(local_people, path, batch_size=1)
    assert local_people.get("k") == {"id": "k", "age": 59}


def test_null_token_and_empty_field_are_null(local_people, tmp_path):
    first = write(tmp_path / "first.csv", [HEADER, "n1,Ann,30,1.5,Oslo,2024-01-01T00:00:00Z,1,b"])
    load_file(local_people, first)
    # NA sets columns to NULL, and so does an empty field of a column with no empty value;
    # an empty str field is the empty string once NULL has a token. A column the header
    # leaves out is kept.
    second = write(tmp_path / "second.csv", ["id,name,age,score,city", "n1,NA,,NA,"])
    report = load_file(local_people, second, null_token="NA")
    assert (report.loaded, report.rejected, report.rejects_path) == (1, 0, None)
    assert local_people.get("n1") == {
        "id": "n1",
        "city": "",
        "joined": datetime(2024, 1, 1, tzinfo=UTC),
        "active": True,
        "bio": "b",
    }
    # Without the token, NA is just text: a name, and a bad float.
    report = load_file(local_people, second)
    assert report.rejected == 1
    assert rejects_of(report)[2]["reason"] == "column 'score': expected float, got 'NA'"


def test_quoted_fields_are_never_null_and_unquoted_ones_follow_the_token(typed, tmp_path):
    """PostgreSQL's CSV rules: ``""`` is the empty value, ``"NA"`` the text NA."""
    lines = [
        "k,t,s,b,i",
        '1,2024-01-01T00:00:00Z,"","",',
        '2,2024-01-01T00:00:00Z,"NA","",NA',
        "3,2024-01-01T00:00:00Z,,,",
        "4,2024-01-01T00:00:00Z,NA,NA,NA",
    ]
    path = write(tmp_path / "q.csv", lines)
    day = datetime(2024, 1, 1, tzinfo=UTC)
    without = load_file(typed, path)
    assert {line: d["reason"] for line, d in rejects_of(without).items()} == {
        3: "column 'i': expected int, got 'NA'",
        5: "column 'b': expected hex bytes (e.g. 0x00ff), got 'NA'; "
        "column 'i': expected int, got 'NA'",
    }
    assert list(typed.scan_rows()) == [{"k": 1, "t": day, "s": "", "b": b""}, {"k": 3, "t": day}]
    typed.delete_many([(1, day), (3, day)])
    report = load_file(typed, path, null_token="NA")
    assert (report.loaded, report.rejected) == (4, 0)
    assert list(typed.scan_rows()) == [
        {"k": 1, "t": day, "s": "", "b": b""},
        {"k": 2, "t": day, "s": "NA", "b": b""},
        {"k": 3, "t": day, "s": "", "b": b""},  # empty int: NULL, no int is empty
        {"k": 4, "t": day},
    ]
    with pytest.raises(ArgumentError, match="null token 'N,A': expected text without commas"):
        load_file(typed, path, null_token="N,A")


def test_jsonl_float_columns_take_the_non_finite_strings_the_exporter_writes(typed, tmp_path):
    day = '"t": "2024-01-01T00:00:00Z"'
    lines = [f'{{"k": {n}, {day}, "f": {v}}}' for n, v in enumerate(
        ['"nan"', '"inf"', '"-inf"', '"-Infinity"', "NaN", "-Infinity", '"1.5"', '"x"']
    )]  # fmt: skip
    report = load_file(typed, write(tmp_path / "f.jsonl", lines))
    assert [d["reason"] for d in rejects_of(report).values()] == [
        """column 'f': expected a JSON number or "nan", "inf", "-inf", got '1.5'""",
        """column 'f': expected a JSON number or "nan", "inf", "-inf", got 'x'""",
    ]
    got = [r["f"] for r in typed.scan_rows()]
    assert math.isnan(got[0]) and math.isnan(got[4])
    assert got[1:4] + got[5:] == [math.inf, -math.inf, -math.inf, -math.inf]


def test_values_of_every_type_from_csv_and_jsonl(typed, tmp_path):
    csv_path = write(
        tmp_path / "typed.csv",
        [
            "k,t,i,f,s,b,flag",
            "1,2024-01-01T00:00:00Z, -42 ,1e3, spaced ,\\xDEad,TRUE",
            "2,2024-01-01T00:00:00+05:30,+7,-inf,,0x,no",
            '3,2024-01-01T00:00:00Z,9223372036854775807,-0.0,"a,b",00ff 10,1',
            "4,2024-01-01T00:00:00Z,1_000,1,x,zz,2",
        ],
    )
    report = load_file(typed, csv_path)
    assert rejects_of(report)[5]["reason"] == (
        "column 'i': expected int, got '1_000'; column 'b': expected hex bytes (e.g. 0x00ff), "
        "got 'zz'; column 'flag': expected bool (true/false/1/0/yes/no), got '2'"
    )
    day = datetime(2024, 1, 1, tzinfo=UTC)
    assert list(typed.scan_rows()) == [
        {"k": 1, "t": day, "i": -42, "f": 1000.0, "s": " spaced ", "b": b"\xde\xad", "flag": True},
        {"k": 2, "t": day - timedelta(hours=5, minutes=30), "i": 7, "f": -math.inf, "b": b"",
         "flag": False},
        {"k": 3, "t": day, "i": 2**63 - 1, "f": 0.0, "s": "a,b", "b": b"\x00\xff\x10",
         "flag": True},
    ]  # fmt: skip
    json_path = write(
        tmp_path / "typed.ndjson",
        [
            '{"k": 1, "t": "2024-01-01T00:00:00Z", "s": "", "b": "\\\\x01", "f": 3}',
            '{"k": 5, "t": "2024-01-01T00:00:00Z", "b": 1}',
            '{"k": 5, "t": 1704067200}',
        ],
    )
    report = load_file(typed, json_path)
    reasons = [d["reason"] for d in rejects_of(report).values()]
    assert reasons == [
        "column 'b': expected a bytes string, got JSON 1",
        "column 't': expected a datetime string, got JSON 1704067200",
    ]
    assert typed.get((1, day)) == {
        "k": 1, "t": day, "i": -42, "f": 3.0, "s": "", "b": b"\x01", "flag": True,
    }  # fmt: skip


def test_bad_header_is_refused_before_anything_is_written(local_people, tmp_path):
    cases = {
        "id,name,agee,nick": r"line 1 \(header\): unknown column\(s\) 'agee', 'nick' for table",
        "name,age": r"row-key column\(s\) 'id' missing",
        "id,age,age": r"duplicate column\(s\) 'age'",
        'id,"age': "unterminated quoted field",
    }
    for header, message in cases.items():
        path = write(tmp_path / "bad.csv", [header, "u1,1,2,3"])
        with pytest.raises(LoadError, match=message):
            load_file(local_people, path)
        assert not os.path.exists(f"{path}.rejects.jsonl")
    assert list(local_people.scan_rows()) == []


def test_bom_and_header_spaces_are_tolerated(local_people, tmp_path):
    path = write(tmp_path / "bom.csv", [b"\xef\xbb\xbfid, age", b"u1,5"], newline=b"\r\n")
    assert load_file(local_people, path).loaded == 1
    assert local_people.get("u1") == {"id": "u1", "age": 5}


def test_unreadable_or_unknown_inputs_raise_load_error(local_people, tmp_path):
    with pytest.raises(LoadError, match=r"cannot read .*missing\.csv"):
        load_file(local_people, tmp_path / "missing.csv")
    (tmp_path / "data.txt").write_text("id\nu1\n")
    with pytest.raises(LoadError, match=r"cannot tell the format of .*data\.txt"):
        load_file(local_people, tmp_path / "data.txt")
    assert load_file(local_people, tmp_path / "data.txt", format="csv").loaded == 1
    with pytest.raises(ArgumentError, match="unknown load format 'xml'"):
        load_file(local_people, tmp_path / "data.txt", format="xml")
    with pytest.raises(ArgumentError, match="not ASCII-compatible"):
        load_file(local_people, tmp_path / "data.txt", format="csv", encoding="utf-16")
    array = tmp_path / "array.json"
    array.write_text('[\n  {"id": "u1"}\n]\n')
    with pytest.raises(LoadError, match="holds a JSON array"):
        load_file(local_people, array)
    with pytest.raises(ArgumentError, match="batch_size=0: expected an integer >= 1"):
        load_file(local_people, tmp_path / "data.txt", format="csv", batch_size=0)


def test_argument_errors_are_refused_at_the_door_before_the_file_is_read(local_people, tmp_path):
    missing = tmp_path / "missing.csv"  # no file: an argument error must come first
    cases = {
        "batch_size=0": {"batch_size": 0},
        "batch_size=True": {"batch_size": True},
        "null token 'a,b'": {"null_token": "a,b"},
        "bulk='yes'": {"bulk": "yes"},
        "resume=1": {"resume": 1},
        "progress=5": {"progress": 5},
        "unknown text encoding 'klingon'": {"encoding": "klingon"},
        "unknown load format 'xml'": {"format": "xml"},
    }
    for message, kwargs in cases.items():
        with pytest.raises(ArgumentError, match=re.escape(message)) as caught:
            load_file(local_people, missing, **kwargs)
        assert "\n" not in str(caught.value)
    assert not missing.exists() and not Path(f"{missing}.rejects.jsonl").exists()


def test_cli_load_batch_size_zero_is_a_one_line_argument_error(local_people, tmp_path):
    path = write(tmp_path / "p.csv", ["id,age", "u1,1"])
    url = local_people.store.url
    result = CliRunner().invoke(main, ["--store", url, "load", "people", str(path),
                                       "--batch-size", "0"])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and "batch_size=0" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert local_people.get("u1") is None


def test_other_encodings_are_decoded_per_line(local_people, tmp_path):
    path = write(tmp_path / "latin.csv", [b"id,name", "u1,Zoë".encode("latin-1")])
    report = load_file(local_people, path, encoding="latin-1")
    assert report.loaded == 1
    assert local_people.get("u1") == {"id": "u1", "name": "Zoë"}


def test_rejects_file_is_truncated_by_a_fresh_load(local_people, tmp_path):
    path = write(tmp_path / "p.csv", ["id,age", "u1,x"])
    rejects = tmp_path / "out" / "rejects.jsonl"
    rejects.parent.mkdir()
    first = load_file(local_people, path, rejects_path=rejects)
    assert first.rejects_path == str(rejects) and rejects.read_text().count("\n") == 1
    write(path, ["id,age", "u1,1"])
    second = load_file(local_people, path, rejects_path=rejects)
    assert second.rejects_path is None and rejects.read_text() == ""


def test_oversize_row_key_is_rejected(local_people, tmp_path):
    path = write(tmp_path / "k.csv", ["id,city", f"{'k' * 40000},x", f"u1,{'c' * 40000}", "u2,y"])
    report = load_file(local_people, path)
    reasons = [d["reason"] for d in rejects_of(report).values()]
    assert "row key takes 40,003 bytes, more than HBase's 32,767" in reasons[0]
    assert "by_city" in reasons[1] and "entry key" in reasons[1] and "HBase's 32,767" in reasons[1]
    assert [r["id"] for r in local_people.scan_rows()] == ["u2"]


def test_memory_stays_bounded_on_a_200k_row_file(local_db, tmp_path):
    """Streaming: the RSS growth stays far below the size of the file, let alone its rows."""
    columns = {"id": "str", "n": "int", "pad": "str"}
    local_db.apply_schema(
        parse_schema({"tables": {"wide": {"row_key": ["id"], "columns": columns}}})
    )
    table = local_db.table("wide")
    path = tmp_path / "wide.csv"
    pad = "p" * 400
    with open(path, "w") as f:
        f.write("id,n,pad\n")
        f.writelines(f"k{i:07d},{i},{pad}\n" for i in range(200_000))
    size = os.path.getsize(path)

    def rss() -> int:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    base = rss()
    peak = [base]

    def sample(done: int, total: int) -> None:
        peak[0] = max(peak[0], rss())

    report = load_file(table, path, bulk=True, progress=sample)
    growth = peak[0] - base
    assert report.loaded == 200_000
    assert growth < 150 * 2**20, f"RSS grew {growth / 2**20:.0f} MiB"
    assert growth < size / 2, f"RSS grew {growth / 2**20:.0f} MiB for a {size / 2**20:.0f} MiB file"


# -- the batch window the loader writes through -------------------------------------------------


class SlowWriter:
    """Stands in for ``IndexWriter.write``: each batch takes its own time, some fail."""

    def __init__(self, delays: dict[bytes, float], failing: set[bytes] = frozenset()) -> None:
        self.delays, self.failing = delays, failing
        self.finished: list[bytes] = []
        self.lock = threading.Lock()

    def __call__(self, changes, bulk=False) -> int:
        (key,) = changes
        time.sleep(self.delays.get(key, 0.0))
        with self.lock:
            self.finished.append(key)
        if key in self.failing:
            raise StoreError(f"write of {key.decode()} failed")
        return 1 if bulk else 0


def test_write_batches_reports_batches_in_order_when_they_finish_out_of_order(
    local_people, monkeypatch
):
    writer = SlowWriter({b"a": 0.3, b"b": 0.0, b"c": 0.1})
    monkeypatch.setattr(local_people.writer, "write", writer)
    reported = []
    batches = [{b"a": {}}, {b"b": {}}, {}, {b"c": {}}]
    count = local_people.write_batches(batches, bulk=True, on_written=lambda *a: reported.append(a))
    assert count == 3
    assert reported == [(0, 1), (1, 1), (2, 0), (3, 1)]
    assert writer.finished[0] == b"b"  # finished first, reported second


def test_write_batches_waits_for_every_batch_then_raises_the_first_error_with_others_as_notes(
    local_people, monkeypatch
):
    writer = SlowWriter({b"a": 0.05, b"b": 0.3, b"c": 0.0}, failing={b"a", b"b"})
    monkeypatch.setattr(local_people.writer, "write", writer)
    with pytest.raises(StoreError, match="write of a failed") as caught:
        local_people.write_batches([{b"a": {}}, {b"b": {}}, {b"c": {}}])
    assert sorted(writer.finished) == [b"a", b"b", b"c"]  # none left running behind the caller
    assert caught.value.__notes__ == ["batch 1 failed too: StoreError: write of b failed"]


def test_write_batches_keeps_the_callers_error_with_failed_batches_as_notes(
    local_people, monkeypatch
):
    writer = SlowWriter({b"a": 0.2, b"b": 0.2}, failing={b"b"})
    monkeypatch.setattr(local_people.writer, "write", writer)

    def batches():
        yield {b"a": {}}
        yield {b"b": {}}
        raise Crash  # the reader of the batches fails while both are in flight

    with pytest.raises(Crash) as caught:
        local_people.write_batches(batches())
    assert sorted(writer.finished) == [b"a", b"b"]
    assert caught.value.__notes__ == ["batch 1 failed too: StoreError: write of b failed"]


def test_write_batches_refuses_what_is_not_batches_of_changes(local_people):
    with pytest.raises(ArgumentError, match=r"batches=\{b'k': \{\}\}: expected an iterable"):
        local_people.write_batches({b"k": {}})
    with pytest.raises(ArgumentError, match="batch 0: expected a dict of changes"):
        local_people.write_batches([[b"k"]])
    with pytest.raises(ArgumentError, match="on_written=5"):
        local_people.write_batches([], on_written=5)


# -- small pieces ------------------------------------------------------------------------------


def test_report_summary_is_one_line():
    report = LoadReport(1000, 990, 10, 0, 0.52, "x.rejects.jsonl")
    assert report.summary() == (
        "read 1,000 / loaded 990 / rejected 10 / 0.52 s / 1,904 rows/s; rejects in x.rejects.jsonl"
    )
    resumed = LoadReport(10, 10, 0, 400, 0.0, None)
    assert resumed.rows_per_second == 0.0
    assert resumed.summary() == (
        "read 10 / loaded 10 / rejected 0 / skipped 400 (resumed) / 0.00 s / 0 rows/s"
    )
    bulk = LoadReport(10, 9, 1, 400, 1.0, "r", existed=3, rejected_earlier=5)
    assert bulk.summary() == (
        "read 10 / loaded 9 / rejected 1 (6 with earlier runs) / skipped 400 (resumed) / "
        "1.00 s / 9 rows/s; 3 row(s) already existed: written in safe mode; rejects in r"
    )


def test_cli_load_errors_are_one_line(local_people, tmp_path):
    (tmp_path / "data.txt").write_text("id\nu1\n")
    (tmp_path / "folder.csv").mkdir()
    url = local_people.store.url
    cases = {
        "data.txt": "give the format, csv, jsonl or parquet (--format on the command line",
        "folder.csv": "it is a directory",
    }
    for name, message in cases.items():
        result = CliRunner().invoke(main, ["--store", url, "load", "people", str(tmp_path / name)])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: ") and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_parse_key_types_cli_keys_from_the_schema(typed, local_people):
    assert parse_key(local_people.definition, "u1") == "u1"
    key = parse_key(typed.definition, '[3, "2024-01-01T01:00:00+01:00"]')
    assert key == (3, datetime(2024, 1, 1, tzinfo=UTC))
    with pytest.raises(EncodingError, match="expected a JSON array of 2 values"):
        parse_key(typed.definition, "3")
    with pytest.raises(EncodingError, match="column 'k': expected int, got str"):
        parse_key(typed.definition, '["3", "2024-01-01T00:00:00Z"]')


def test_checkpoint_documents_round_trip_through_meta(local_db):
    meta = local_db.meta
    name = f"load:t:/{uuid.uuid4().hex}"
    assert meta.load_checkpoint(name) is None
    meta.save_checkpoint(name, '{"line": 1}')
    meta.save_checkpoint(name, '{"line": 2}')
    assert meta.load_checkpoint(name) == '{"line": 2}'
    meta.clear_checkpoint(name)
    assert meta.load_checkpoint(name) is None
    meta.save_checkpoint(name, '{"line": 3}')  # in the same millisecond as the clear
    assert meta.load_checkpoint(name) == '{"line": 3}'


@pytest.mark.hbase
def test_gateway_restart_mid_load_loses_nothing(hbase_store, tmp_path):
    """Both Thrift gateways are killed and restarted while a load runs: it completes, with
    every row and every index entry in place."""
    import subprocess
    import threading
    import uuid
    from pathlib import Path

    from culvert_py.client import Client
    from culvert_py.load import load_file
    from culvert_py.ops import verify_index
    from culvert_py.schema import parse_schema

    db = Client(hbase_store, close_store=False)
    if db.store.url.split("?")[0] != "hbase://127.0.0.1:9090":
        pytest.fail("this test restarts the dev HBase's gateways: run it against hbase-local")
    root = Path(__file__).resolve().parent.parent
    name = f"gw_{uuid.uuid4().hex[:8]}"
    db.apply_schema(
        parse_schema(
            {
                "tables": {
                    name: {
                        "row_key": ["id"],
                        "columns": {"id": "str", "age": "int", "city": "str"},
                        "indexes": {
                            "by_age": {"kind": "range", "columns": ["age"]},
                            "by_city": {"kind": "term", "columns": ["city"]},
                        },
                    }
                }
            }
        )
    )
    table = db.table(name)
    path = tmp_path / "rows.csv"
    with path.open("w") as f:
        f.write("id,age,city\n")
        for i in range(15_000):
            f.write(f"r{i:06d},{i % 50},c{i % 7}\n")
    restarted = threading.Event()
    outcome: list = []

    def restart() -> None:
        proc = subprocess.run(
            [str(root / "hbase" / "hbase-local"), "restart-gateways"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        outcome.append(proc)
        restarted.set()

    def progress(read: int, total: int) -> None:
        if read > total // 5 and not outcome and not restarted.is_set():
            outcome.append("started")
            threading.Thread(target=restart, daemon=True).start()

    try:
        report = load_file(table, path, batch_size=500, progress=progress)
        restarted.wait(300)
        assert outcome[-1].returncode == 0, outcome[-1].stdout + outcome[-1].stderr
        assert "killed thrift1" in outcome[-1].stdout
        assert report.loaded == 15_000 and report.rejected == 0
        rows = {r["id"]: r for r in table.scan_rows()}
        assert len(rows) == 15_000 and rows["r000123"] == {"id": "r000123", "age": 23, "city": "c4"}
        for index in ("by_age", "by_city"):
            assert verify_index(db, name, index).clean
    finally:
        restarted.wait(300)
        db.drop_table(name)
        db.close()
