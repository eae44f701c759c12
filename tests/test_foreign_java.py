"""The Java foreign-writer harness (tests/foreign.py) agrees byte for byte with Java's Bytes.

These tests prove the harness, not culvert_py's adoption of foreign tables: a real Java client
writes cells that Python reads raw through the store, and cells Python writes raw are decoded
by Java. Expected bytes are Java's definitions written out here independently:
``Bytes.toBytes(int)`` is 4 bytes big-endian two's complement, ``Bytes.toBytes(boolean)`` is
``0xff``/``0x00``, ``Bytes.toBytes(double)`` is ``Double.doubleToLongBits`` big-endian, ...
"""

from __future__ import annotations

import math
import struct
import uuid

import pytest

from tests.foreign import ForeignError, java_create, java_delete, java_get, java_put

pytestmark = pytest.mark.hbase

TS = 1_700_000_000_000


@pytest.fixture
def table_name(hbase_store):
    """A unique table name; the table (whoever created it) is dropped afterwards."""
    name = f"foreign_{uuid.uuid4().hex[:12]}"
    yield name
    hbase_store.delete_table(name)


def cell(family, qualifier, codec, value=None, **extra):
    return {"family": family, "qualifier": qualifier, "codec": codec, "value": value, **extra}


# (qualifier, codec, JSON value, the bytes Java's Bytes.toBytes writes for it)
JAVA_CELLS = [
    ("s16", "int16", -1234, b"\xfb\x2e"),
    ("age", "int32", 36, b"\x00\x00\x00\x24"),
    ("neg", "int32", -2, b"\xff\xff\xff\xfe"),
    ("big", "int64", 1_234_567_890_123, bytes.fromhex("0000011f71fb04cb")),
    ("f32", "float32", 1.5, b"\x3f\xc0\x00\x00"),
    ("tenth32", "float32", 0.1, b"\x3d\xcc\xcc\xcd"),  # (float) 0.1d
    ("pi", "float64", math.pi, struct.pack(">d", math.pi)),
    ("negzero", "float64", -0.0, b"\x80" + b"\x00" * 7),
    ("nan", "float64", "NaN", bytes.fromhex("7ff8000000000000")),  # canonical NaN bits
    ("inf32", "float32", "-Infinity", b"\xff\x80\x00\x00"),
    ("yes", "bool", True, b"\xff"),
    ("no", "bool", False, b"\x00"),
    ("name", "utf8", "Zoë ✓", b"Zo\xc3\xab \xe2\x9c\x93"),
    ("empty", "utf8", "", b""),
    ("blob", "raw", "00ff7f", b"\x00\xff\x7f"),
    ("age_text", "text", 36, b"36"),
    ("ratio_text", "text", 36.5, b"36.5"),  # String.valueOf(36.5d)
    ("code_text", "text", "007", b"007"),
    ("created", "epoch_millis", 1_700_000_000_123, bytes.fromhex("0000018bcfe5687b")),
    ("seen", "epoch_seconds", 1_700_000_000, bytes.fromhex("000000006553f100")),
    ("at", "iso8601", "2024-02-29T12:34:56Z", b"2024-02-29T12:34:56Z"),
]

# (row spec, the row key bytes Java writes)
JAVA_ROWS = [
    ({"codec": "raw", "value": "00ff"}, b"\x00\xff"),
    ({"codec": "int32", "value": -7}, b"\xff\xff\xff\xf9"),
    ({"codec": "int64", "value": 42}, b"\x00" * 7 + b"\x2a"),
    ({"codec": "composite", "value": "t1#u9"}, b"t1#u9"),
    ({"codec": "composite", "value": ["t1", "u10"], "sep": "#"}, b"t1#u10"),
    ({"codec": "utf8", "value": "u2"}, b"u2"),
]


# (qualifier, codec) -> what Java's Bytes.toX returns for the cells test 2 writes from Python
JAVA_READS = {
    ("s16", "int16"): -1234,
    ("age", "int32"): 36,
    ("big", "int64"): -(2**62) - 3,
    ("e", "float64"): math.e,
    ("nan", "float64"): "NaN",
    ("yes", "bool"): True,
    ("one", "bool"): True,  # Bytes.toBoolean: any non-zero byte is true
    ("no", "bool"): False,
    ("name", "utf8"): "Zoë ✓",
    ("age_text", "text"): "36",
    ("created", "epoch_millis"): 1_700_000_000_123,
    ("at", "iso8601"): "2024-02-29T12:34:56Z",
    ("blob", "raw"): "00ff7f",
    ("junk", "int32"): None,  # Bytes.toInt refuses 3 bytes ...
    ("junk", "bool"): None,  # ... Bytes.toBoolean anything but 1 byte ...
    ("age", "int64"): None,  # ... Bytes.toLong 4 bytes ...
    ("big", "int32"): -1073741825,  # ... but Bytes.toInt reads 8 bytes' first 4 (0xbfffffff)
    ("junk", "utf8"): "\ufffd\ufffd\x00",  # malformed UTF-8 becomes U+FFFD
    ("absent", "int32"): None,
}


def test_java_writes_every_codec_as_bytes_toBytes_does(hbase_store, table_name):
    created = java_create(table_name, ["info", "x"], splits=3)
    assert created == {"table": table_name, "created": True, "regions": 3}
    assert len(hbase_store.regions(table_name)) == 3
    rows = [
        {
            "row": "u1",
            "cells": [cell("info", q, codec, value) for q, codec, value, _ in JAVA_CELLS]
            + [cell("x", "stamped", "utf8", "v", ts=1234)],
        }
    ]
    rows += [
        {"row": spec, "cells": [cell("info", "n", "int32", i)]}
        for i, (spec, _) in enumerate(JAVA_ROWS)
    ]
    assert java_put(table_name, rows) == {
        "rows": 1 + len(JAVA_ROWS),
        "cells": len(JAVA_CELLS) + 1 + len(JAVA_ROWS),
    }

    table = hbase_store.table(table_name)
    expected = {b"u1": {b"info:" + q.encode(): raw for q, _, _, raw in JAVA_CELLS}}
    expected[b"u1"][b"x:stamped"] = b"v"
    for i, (_, key) in enumerate(JAVA_ROWS):
        expected[key] = {b"info:n": struct.pack(">i", i)}
    assert dict(table.scan()) == expected
    assert [key for key, _ in table.scan()] == sorted(expected)  # unsigned byte order
    assert table.get_many([b"u1"], [b"x:stamped"], include_timestamp=True) == {
        b"u1": {b"x:stamped": (b"v", 1234)}
    }

    assert java_delete(table_name, ["u1", JAVA_ROWS[1][0]]) == {"rows": 2}
    left = {key for key, _ in table.scan()}
    assert left == set(expected) - {b"u1", JAVA_ROWS[1][1]}


def test_java_reads_python_cells_as_bytes_toX_does(hbase_store, table_name):
    hbase_store.create_table(table_name, ["info"])
    python_cells = {
        b"info:s16": struct.pack(">h", -1234),
        b"info:age": struct.pack(">i", 36),
        b"info:big": struct.pack(">q", -(2**62) - 3),
        b"info:tenth32": struct.pack(">f", 0.1),
        b"info:e": struct.pack(">d", math.e),
        b"info:nan": struct.pack(">d", math.nan),
        b"info:yes": b"\xff",
        b"info:one": b"\x01",
        b"info:no": b"\x00",
        b"info:name": "Zoë ✓".encode(),
        b"info:age_text": b"36",
        b"info:created": struct.pack(">q", 1_700_000_000_123),
        b"info:at": b"2024-02-29T12:34:56Z",
        b"info:blob": b"\x00\xff\x7f",
        b"info:junk": b"\xff\xfe\x00",  # no codec reads three bytes
    }
    hbase_store.table(table_name).put_many([(b"p1", python_cells)], TS)

    asks = [("info", q, codec) for q, codec in JAVA_READS] + [("info", "tenth32", "float32")]
    got = java_get(
        table_name,
        [
            {"row": "p1", "cells": [cell(*ask) for ask in asks]},
            {"row": {"codec": "raw", "value": "0070"}, "cells": [cell("info", "age", "int32")]},
        ],
    )
    assert [r["exists"] for r in got] == [True, False]
    assert got[1]["cells"][0]["value"] is None
    answers = {(c["qualifier"], c["codec"]): c for c in got[0]["cells"]}
    assert list(answers) == [(q, codec) for _, q, codec in asks]
    tenth = answers.pop(("tenth32", "float32"))["value"]  # Float.toString: "0.1"
    assert struct.pack(">f", tenth) == python_cells[b"info:tenth32"]
    assert {key: c["value"] for key, c in answers.items()} == JAVA_READS
    for key in [("junk", "int32"), ("junk", "bool"), ("age", "int64")]:
        assert answers[key]["error"].startswith("IllegalArgumentException"), answers[key]
    assert {c["hex"] for (q, _), c in answers.items() if q == "junk"} == {"fffe00"}
    assert answers[("absent", "int32")]["hex"] is None
    assert answers[("age", "int32")]["ts"] == TS


def test_java_put_refuses_a_bad_batch_whole(hbase_store, table_name):
    assert java_create(table_name, ["info"], split_keys=["utf8:m"])["regions"] == 2
    assert java_create(table_name, ["info"])["created"] is False
    rows = [
        {"row": "ok", "cells": [cell("info", "a", "int16", 1)]},
        {"row": "bad", "cells": [cell("info", "a", "int16", 40_000)]},
    ]
    with pytest.raises(ForeignError, match=r"put .*: line 2 cell info:a: codec int16 needs"):
        java_put(table_name, rows)
    assert dict(hbase_store.table(table_name).scan()) == {}
