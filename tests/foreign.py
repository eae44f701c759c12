"""Drive a real Java HBase client (hbase/foreign/ForeignRows.java) from tests, in batches.

The "foreign writer" of issue 10: a Java program on HBase's own client jars that writes cells
with ``Bytes.toBytes(int)``, ``Bytes.toBytes(double)``, ``Bytes.toBytes(String)`` ... and reads
them back with ``Bytes.toInt``, ``Bytes.toDouble``, ``Bytes.toString`` ..., as the services whose
tables culvert_py adopts do. Each call is one JVM (about 1 s; the first after a source change
compiles for about 8 s), so pass whole batches of rows, never one row per call.

It reaches HBase through ZooKeeper: 127.0.0.1:2181, znode ``/hbase`` (hbase/hbase-local's dev
cluster), or ``CULVERT_FOREIGN_ZK`` / ``CULVERT_FOREIGN_ZK_PORT`` / ``CULVERT_FOREIGN_ZNODE``.

Rows are plain dicts, sent as JSON Lines (see ForeignRows.java for the full format):

- a row key: ``"u1"`` (UTF-8), or ``{"codec": C, "value": V}`` with C one of :data:`CODECS`
  (``raw`` takes hex), or ``{"codec": "composite", "value": ["t1", "u1"], "sep": "#"}``;
- a put: ``{"row": KEY, "ts": T?, "cells": [{"family", "qualifier", "codec", "value", "ts"?}]}``;
- a get: ``{"row": KEY, "cells": [{"family", "qualifier", "codec"}]}`` (no ``cells``: every
  cell, raw); the answer per row is ``{"row", "row_hex", "exists", "cells": [{"family",
  "qualifier", "codec", "value", "hex", "ts", "error"?}]}``, ``value``/``hex`` ``None`` when
  the cell is absent, ``value`` ``None`` plus ``error`` when Java's ``Bytes.toX`` refuses the
  bytes; float NaN/infinities travel as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``;
- a delete: ``KEY`` or ``{"row": KEY, "cells": [{"family", "qualifier"}]?, "ts": T?}``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Sequence

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The launcher: compiles ForeignRows.java when needed, then runs it.
RUN = os.path.join(_REPO, "hbase", "foreign", "run")

#: Value codecs and the Java type each is written as, with ``Bytes.toBytes(...)``.
CODECS = {
    "int16": "short",
    "int32": "int",
    "int64": "long",
    "float32": "float",
    "float64": "double",
    "bool": "boolean",
    "utf8": "String",
    "raw": "byte[] (hex in JSON)",
    "text": "String.valueOf(value): decimal text, as the HBase shell writes",
    "epoch_millis": "long",
    "epoch_seconds": "long",
    "iso8601": "String",
}

#: Seconds one batch may take (JVM start, connection, the batch itself).
TIMEOUT = 120


class ForeignError(RuntimeError):
    """The Java client failed; the message is its one-line error."""


def java_create(
    table: str, families: Sequence[str], splits: int = 0, split_keys: Sequence[str] = ()
) -> dict:
    """Create ``table`` with ``families`` unless it exists (Admin.createTable, default
    column-family settings, as a Java service would).

    :param splits: pre-split into this many regions, evenly over the 8-byte key space
    :param split_keys: or split at these keys, each ``"CODEC:VALUE"`` (``"utf8:m"``, ``"raw:80"``)
    :return: ``{"table", "created", "regions"}``
    :raises ForeignError: when the Java client fails
    """
    args = ["create", table, *families]
    if splits:
        args += ["--splits", str(splits)]
    for key in split_keys:
        args += ["--split", key]
    return _run(args, ())[0]


def java_drop(table: str) -> dict:
    """Disable and drop ``table`` if it exists; returns ``{"table", "dropped"}``."""
    return _run(["drop", table], ())[0]


def java_put(table: str, rows: Iterable[dict]) -> dict:
    """Write ``rows`` (put dicts, see the module docstring) in one batch.

    :return: ``{"rows", "cells"}`` written
    :raises ForeignError: for a malformed row (nothing is written) or an HBase failure
    """
    return _run(["put", table], rows)[0]


def java_get(table: str, rows: Iterable[dict]) -> list[dict]:
    """Read ``rows`` (get dicts) and decode each cell as Java's ``Bytes.toX`` does.

    :return: one answer dict per requested row, in order
    :raises ForeignError: when the Java client fails
    """
    return _run(["get", table], rows)


def java_delete(table: str, rows: Iterable[dict | str]) -> dict:
    """Delete whole rows (or the listed cells) with Java ``Delete``s; returns ``{"rows"}``."""
    return _run(["delete", table], rows)[0]


def java_scan(table: str, limit: int | None = None) -> list[dict]:
    """Every row of ``table`` as ``{"row", "row_hex", "cells"}``, values in hex, key order."""
    args = ["scan", table] + (["--limit", str(limit)] if limit is not None else [])
    return _run(args, ())


def _run(args: list[str], lines: Iterable[object]) -> list[dict]:
    try:
        # allow_nan=False: Java reads NaN only as the string "NaN"; fail here, not in the JVM
        payload = "".join(json.dumps(line, allow_nan=False) + "\n" for line in lines)
    except ValueError as exc:
        raise ForeignError(f"{' '.join(args[:2])}: {exc} (send floats NaN/inf as strings)") from exc
    try:
        done = subprocess.run(
            [RUN, *args],
            input=payload,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ForeignError(f"{' '.join(args[:2])}: no answer within {TIMEOUT}s from {RUN}") from exc
    if done.returncode != 0:
        # ForeignRows prints one line "error: COMMAND TABLE: what failed"
        message = done.stderr.strip() or f"{' '.join(args[:2])}: exit {done.returncode}, no message"
        raise ForeignError(message)
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
