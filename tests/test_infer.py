"""``infer_schema``/``to_toml`` on tables written the way Java services and the shell write them.

Each test writes raw cells through the store API in a foreign application's encodings
(``Bytes.toBytes(int/long/double/float/short/boolean)``, decimal text, ISO text, epoch
millis) plus some junk, and checks the draft against what was written: the guessed codec
per cell, and that this codec decodes the written bytes back to the values the
"application" meant. Every test runs on SQLite and on the real HBase.
"""

from __future__ import annotations

import struct
import tomllib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from culvert_cli import main as cli
from culvert_py.codecs import codec_for
from culvert_py.errors import ArgumentError, SchemaError, StoreError
from culvert_py.ops import InferredSchema, infer_schema, to_toml
from culvert_py.schema import parse_schema
from culvert_py.store import open_store

TS = 1_000
T0 = datetime(2023, 5, 1, 12, 0, tzinfo=UTC)

#: cell -> (expected type, codec, value of row i): the application's declared encodings.
WRITERS = {
    b"info:age": ("int", "int32", lambda i: 18 + i % 60),  # Bytes.toBytes(int)
    b"info:visits": ("int", "int64", lambda i: i * 100_003 - 50),  # Bytes.toBytes(long)
    b"info:balance": ("float", "float64", lambda i: i * 2.5 - 10.125),  # toBytes(double)
    b"info:rating": ("float", "float32", lambda i: (0.5, 4.25, 3.75, 1.5)[i % 4]),
    b"info:rank": ("int", "int16", lambda i: i - 30),  # Bytes.toBytes(short)
    b"info:active": ("bool", "bool", lambda i: i % 3 != 0),  # Bytes.toBytes(boolean)
    b"info:email": ("str", "utf8", lambda i: f"user{i}@example.com"),
    b"info:n": ("int", "text", lambda i: i * 3 - 7),  # the HBase shell's put of "42"
    b"info:score": ("float", "text", lambda i: i / 4),  # decimal text
    b"info:verified": ("bool", "text", lambda i: i % 2 == 0),  # "true"/"false"
    b"info:created_at": ("datetime", "epoch_millis", lambda i: T0 + timedelta(hours=i)),
    b"info:joined": ("datetime", "iso8601", lambda i: T0 - timedelta(days=i)),
    b"info:avatar": ("bytes", "raw", lambda i: bytes([i, 0xFE, 0xFF, 0x00, 0x80])),
}


def _encoded(cell: bytes, i: int) -> bytes:
    type_name, codec, value = WRITERS[cell]
    if cell == b"info:joined":  # ISO text in the spellings writers use
        text = value(i).isoformat()
        return (text.replace("+00:00", "Z") if i % 2 else text).encode()
    return codec_for(type_name, codec).encode(value(i))


def _write(table, keys: list[bytes], cells=WRITERS) -> None:
    table.put_many([(key, {c: _encoded(c, i) for c in cells}) for i, key in enumerate(keys)], TS)


def _by_cell(inferred: InferredSchema) -> dict[str, object]:
    return {c.cell: c for c in inferred.columns if c.cell is not None}


def _draft_table(inferred: InferredSchema):
    """The draft read back by the schema parser: the table's ``TableDef``."""
    return parse_schema(tomllib.loads(to_toml(inferred))).table(inferred.name)


# -- guessing cells ---------------------------------------------------------------------------


def test_guesses_the_codec_each_writer_used(store, make_table):
    table = make_table(families=("info",))
    keys = [f"k{i:04d}".encode() for i in range(80)]
    _write(table, keys)
    inferred = infer_schema(store, table.name)
    found = _by_cell(inferred)
    guessed = {
        cell: (found[cell.decode()].type_name, found[cell.decode()].codec) for cell in WRITERS
    }
    assert guessed == {cell: spec[:2] for cell, spec in WRITERS.items()}
    assert all(c.rows == 80 and c.misfits == 0 for c in found.values())
    # The oracle: the guessed codec gives back what the application meant to store.
    rows = dict(table.scan())
    for cell, (_, _, value) in WRITERS.items():
        c = found[cell.decode()]
        decoder = codec_for(c.type_name, c.codec)
        for i, key in enumerate(keys):
            assert decoder.decode(rows[key][cell]) == value(i), (cell, i)


def test_a_few_junk_cells_are_tolerated_and_counted(store, make_table):
    table = make_table(families=("info",))
    keys = [f"k{i:04d}".encode() for i in range(100)]
    _write(table, keys, cells=[b"info:age", b"info:n"])
    table.put_many([(keys[3], {b"info:age": b"n/a"}), (keys[7], {b"info:age": b"\x01"})], TS + 1)
    table.put_many([(keys[5], {b"info:n": b"lots"})], TS + 1)
    table.put_many([(b"k9999", {b"info:extra": b"x"})], TS)  # a row without age or n
    inferred = infer_schema(store, table.name)
    age, n = _by_cell(inferred)["info:age"], _by_cell(inferred)["info:n"]
    assert (age.type_name, age.codec, age.rows, age.misfits) == ("int", "int32", 100, 2)
    assert (n.type_name, n.codec, n.rows, n.misfits) == ("int", "text", 100, 1)
    assert "# 100/101 rows; 2 did not decode as int32 (e.g. b'n/a')" in to_toml(inferred)


def test_more_junk_falls_back_to_the_general_codec(store, make_table):
    table = make_table(families=("info",))
    keys = [f"k{i:03d}".encode() for i in range(40)]
    _write(table, keys, cells=[b"info:n", b"info:visits"])
    junk = {b"info:n": b"unknown", b"info:visits": b"\x00\x01"}
    table.put_many([(k, junk) for k in keys[:5]], TS + 1)  # 12.5% junk
    found = _by_cell(infer_schema(store, table.name))
    assert (found["info:n"].type_name, found["info:n"].codec) == ("str", "utf8")
    assert (found["info:visits"].type_name, found["info:visits"].codec) == ("bytes", "raw")


def test_epoch_millis_needs_a_name_that_says_time(store, make_table):
    table = make_table(families=("d",))
    millis = [struct.pack(">q", 1_600_000_000_000 + i * 86_400_000) for i in range(30)]
    seconds = [struct.pack(">q", 1_600_000_000 + i * 86_400) for i in range(30)]
    table.put_many(
        [
            (f"r{i:02d}".encode(), {b"d:updatedAt": m, b"d:total": m, b"d:seen_ts": s})
            for i, (m, s) in enumerate(zip(millis, seconds, strict=True))
        ],
        TS,
    )
    found = _by_cell(infer_schema(store, table.name))
    assert found["d:updatedAt"].codec == "epoch_millis"
    assert found["d:seen_ts"].codec == "epoch_seconds"
    total = found["d:total"]
    assert (total.type_name, total.codec) == ("int", "int64")
    assert "epoch_millis" in total.hint


def test_doubles_and_longs_are_told_apart_and_zeros_stay_longs(store, make_table):
    table = make_table(families=("d",))
    rows = [
        (
            f"r{i:02d}".encode(),
            {
                b"d:zero": struct.pack(">q", 0),
                b"d:neg": struct.pack(">q", -i - 1),  # reads as NaN as a double
                b"d:price": struct.pack(">d", 0.0 if i % 5 == 0 else 9.99 * i),
                b"d:id": struct.pack(">i", 1_000_000_000 + i * 7919),  # float32's window
                b"d:ratio": struct.pack(">f", 1 / (i + 3)),  # a computed float32
            },
        )
        for i in range(30)
    ]
    table.put_many(rows, TS)
    found = _by_cell(infer_schema(store, table.name))
    codecs = {cell: c.codec for cell, c in found.items()}
    assert codecs == {
        "d:zero": "int64",
        "d:neg": "int64",
        "d:price": "float64",
        "d:id": "int32",
        "d:ratio": "int32",  # not a short decimal: conservatively an int, with a hint
    }
    assert "float32" in found["d:ratio"].hint


def test_text_that_only_looks_numeric_stays_text(store, make_table):
    table = make_table(families=("d",))
    rows = [
        (
            f"r{i:02d}".encode(),
            {
                b"d:zip": f"{i * 37:05d}".encode(),  # leading zeros: a code
                b"d:code": f"{i:08d}".encode()[:8],  # printable 8 bytes, not a long
                b"d:word": b"true" if i % 2 else b"maybe",
                b"d:empty": b"",
            },
        )
        for i in range(20)
    ]
    table.put_many(rows, TS)
    found = _by_cell(infer_schema(store, table.name))
    assert {cell: (c.type_name, c.codec) for cell, c in found.items()} == {
        "d:zip": ("str", "utf8"),
        "d:code": ("str", "utf8"),
        "d:word": ("str", "utf8"),
        "d:empty": ("bytes", "raw"),
    }


# -- the row key ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "shape"),
    [
        ([f"{('eu', 'us')[i % 2]}#u{i}".encode() for i in range(30)], ("utf8", "#", ["str"] * 2)),
        ([f"{i % 3}|{i}|x{i}".encode() for i in range(30)], ("utf8", "|", ["int", "int", "str"])),
        ([f"tenant{i % 4}:{i}".encode() for i in range(30)], ("utf8", ":", ["str", "int"])),
        ([struct.pack(">q", i * 1_000_003) for i in range(30)], ("int64", None, ["int"])),
        ([struct.pack(">i", i) for i in range(30)], ("int32", None, ["int"])),
        ([str(uuid.UUID(int=i * 10**30)).encode() for i in range(30)], ("utf8", None, ["str"])),
        ([f"user_{i}".encode() for i in range(30)], ("utf8", None, ["str"])),
        (
            [f"2024-01-{i % 28 + 1:02d}".encode() + bytes([i]) for i in range(30)],
            ("raw", None, ["bytes"]),
        ),
    ],
    ids=["hash", "pipe-ints", "colon", "int64", "int32", "uuid", "prefix", "raw"],
)
def test_row_key_shape(store, make_table, keys, shape):
    table = make_table(families=("f",))
    table.put_many([(k, {b"f:v": b"1"}) for k in keys], TS)
    inferred = infer_schema(store, table.name)
    types = [c.type_name for c in inferred.columns if c.cell is None]
    assert (inferred.row_key_codec, inferred.row_key_delimiter, types) == shape
    assert inferred.key_misfits == 0
    draft = _draft_table(inferred)
    assert (draft.row_key_codec, draft.row_key_delimiter) == shape[:2]
    assert [draft.columns[k] for k in draft.row_key] == types


# -- sampling, names, the draft ---------------------------------------------------------------


def test_a_pre_split_table_is_sampled_across_its_regions(store, make_table):
    table = make_table(families=("f",), split_keys=[b"m"])
    table.put_many([(f"a{i:03d}".encode(), {b"f:left": b"L"}) for i in range(200)], TS)
    table.put_many([(f"z{i:03d}".encode(), {b"f:right": b"R"}) for i in range(200)], TS)
    inferred = infer_schema(store, table.name, sample=20)
    found = _by_cell(inferred)
    assert (found["f:left"].rows, found["f:right"].rows) == (10, 10)
    assert (inferred.rows_sampled, inferred.regions_sampled, inferred.regions) == (20, 2, 2)


def test_a_short_region_leaves_its_share_to_the_next(store, make_table):
    table = make_table(families=("f",), split_keys=[b"m", b"t"])
    table.put_many([(b"a1", {b"f:v": b"1"})], TS)
    table.put_many([(f"n{i:03d}".encode(), {b"f:v": b"2"}) for i in range(50)], TS)
    table.put_many([(f"u{i:03d}".encode(), {b"f:v": b"3"}) for i in range(50)], TS)
    inferred = infer_schema(store, table.name, sample=30)
    assert inferred.rows_sampled == 30


def test_names_are_valid_unique_and_unnameable_cells_are_skipped(store, make_table):
    table = make_table(families=("info", "x"))
    cells = {
        b"info:e-mail": b"a@b",
        b"info:2fa": b"\x00",
        "info:név".encode(): b"Ada",
        b"info:email": b"c@d",
        b"x:email": b"e@f",
        b"x:e_mail": b"g@h",
        b"info:\xff\xfe": b"?",
        b"info:_culvert": b"\x00" * 17,  # culvert_py's own version cell
    }
    table.put_many([(b"row1", cells), (b"row2", cells)], TS)
    inferred = infer_schema(store, table.name)
    names = {c.cell: c.name for c in inferred.columns if c.cell is not None}
    assert names == {
        "info:2fa": "col_2fa",
        "info:e-mail": "e_mail",
        "info:email": "email",
        "info:név": "nev",
        "x:e_mail": "x_e_mail",
        "x:email": "x_email",
    }
    assert inferred.family == "info"
    assert len(inferred.left_out) == 1 and "\\xff\\xfe" in inferred.left_out[0]
    draft = _draft_table(inferred)
    assert dict(draft.cells) == {name: cell for cell, name in names.items()}


def test_the_draft_is_an_adopted_schema_the_parser_accepts(store, make_table):
    table = make_table(families=("info", "audit", "archive"))
    keys = [f"{'eu' if i % 2 else 'us'}#{i}".encode() for i in range(40)]
    _write(table, keys)
    table.put_many([(k, {b"audit:by": b"batch-job"}) for k in keys], TS)
    inferred = infer_schema(store, table.name, name="users")
    text = to_toml(inferred)
    assert "# left out: family 'archive': no cells in the sample" in text
    data = tomllib.loads(text)
    spec = data["tables"]["users"]
    assert spec["existing"] is True and spec["hbase_table"] == table.name
    assert (spec["family"], spec["row_key"], spec["row_key_delimiter"]) == (
        "info",
        ["key_1", "key_2"],
        "#",
    )
    assert spec["columns"]["key_2"] == "int"
    draft = _draft_table(inferred)
    assert draft.existing and draft.hbase_table == table.name
    assert dict(draft.codecs) == {c.name: c.codec for c in inferred.columns if c.cell}
    assert dict(draft.cells) == {c.name: c.cell for c in inferred.columns if c.cell}
    assert dict(draft.columns) == {c.name: c.type_name for c in inferred.columns}


def test_refuses_what_it_cannot_sample(store, make_table):
    with pytest.raises(StoreError, match="does not exist"):
        infer_schema(store, f"missing_{uuid.uuid4().hex[:8]}")
    empty = make_table(families=("f",))
    with pytest.raises(SchemaError, match="no rows"):
        infer_schema(store, empty.name)
    for bad in ({"sample": 0}, {"sample": True}, {"name": "9lives"}, {"name": "a-b"}):
        with pytest.raises(ArgumentError):
            infer_schema(store, empty.name, **bad)


# -- the command ------------------------------------------------------------------------------


def test_cli_prints_the_draft_and_refuses_a_missing_table(tmp_path):
    url = f"sqlite:///{tmp_path / 'infer.db'}"
    with open_store(url) as store:
        store.create_table("users", ["info"])
        _write(store.table("users"), [f"u{i}".encode() for i in range(10)])
    runner = CliRunner()
    result = runner.invoke(cli.main, ["--store", url, "schema", "infer", "users", "--sample", "5"])
    assert result.exit_code == 0, result.output
    spec = tomllib.loads(result.stdout)["tables"]["users"]
    assert spec["columns"]["age"] == {"type": "int", "cell": "info:age", "codec": "int32"}
    assert "5/5 rows" in result.stdout
    named = runner.invoke(cli.main, ["--store", url, "schema", "infer", "users", "--name", "u2"])
    assert "[tables.u2]" in named.stdout
    missing = runner.invoke(cli.main, ["--store", url, "schema", "infer", "nope"])
    assert missing.exit_code == 2
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "'nope'" in lines[0]
