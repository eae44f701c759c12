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
import tomllib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from culvert_py.client import Client
from culvert_py.errors import EncodingError, LoadError
from culvert_py.loader import MAX_CELL_BYTES, LoadReport, load_file, parse_key
from culvert_py.schema import parse_schema
from culvert_py.store import open_store

from .conftest import PEOPLE_TOML

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
    # Rejects of batches that were read again were not listed twice.
    assert sorted(rejects_of(report)) == bad
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
    # NA and empty set columns to NULL; a column the header leaves out is kept.
    second = write(tmp_path / "second.csv", ["id,name,age,score,city", "n1,NA,,NA,"])
    report = load_file(local_people, second, null_token="NA")
    assert (report.loaded, report.rejected, report.rejects_path) == (1, 0, None)
    assert local_people.get("n1") == {
        "id": "n1",
        "joined": datetime(2024, 1, 1, tzinfo=UTC),
        "active": True,
        "bio": "b",
    }
    # Without the token, NA is just text: a name, and a bad float.
    report = load_file(local_people, second)
    assert report.rejected == 1
    assert rejects_of(report)[2]["reason"] == "column 'score': expected float, got 'NA'"


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
    with pytest.raises(LoadError, match="unknown load format 'xml'"):
        load_file(local_people, tmp_path / "data.txt", format="xml")
    with pytest.raises(LoadError, match="not ASCII-compatible"):
        load_file(local_people, tmp_path / "data.txt", format="csv", encoding="utf-16")
    array = tmp_path / "array.json"
    array.write_text('[\n  {"id": "u1"}\n]\n')
    with pytest.raises(LoadError, match="holds a JSON array"):
        load_file(local_people, array)
    with pytest.raises(LoadError, match="batch_size must be a positive integer, got 0"):
        load_file(local_people, tmp_path / "data.txt", format="csv", batch_size=0)


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
    assert reasons[0].startswith("row key takes 40,003 bytes, more than HBase's 32,767")
    assert reasons[1].startswith("index 'by_city': entry key longer than HBase's 32,767 bytes")
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

    from culvert_py.build import verify_index
    from culvert_py.client import Client
    from culvert_py.loader import load_file
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
