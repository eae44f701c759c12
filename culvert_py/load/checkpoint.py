"""The resume point of a load: a small JSON document kept in the meta table.

A checkpoint is saved (:meth:`~culvert_py.meta.Meta.save_checkpoint`) after a batch is written,
and every batch before it: the file's size and mtime, the format and null token the load
was started with, the last line and byte offset written, the counts so far, the rejects
file and its size. A resumed load checks it against the file before it reads on.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from culvert_py.errors import LoadError

VERSION = 1
_INTEGERS = ("size", "mtime_ns", "line", "offset", "read", "loaded", "rejected")


def checkpoint_name(table: str, path: Path) -> str:
    """The meta-table name of the checkpoint of loading ``path`` (absolute) into ``table``."""
    return f"load:{table}:{path}"


def checkpoint_text(
    *,
    table: str,
    path: Path,
    size: int,
    mtime_ns: int,
    fmt: str,
    null: str | None,
    line: int,
    offset: int,
    totals: dict[str, int],
    rejects: Path,
    rejects_size: int,
) -> str:
    """The checkpoint text of a load that has written everything up to ``line``/``offset``.

    :param totals: ``{"read", "loaded", "rejected"}`` counts of every run so far
    """
    return json.dumps(
        {
            "version": VERSION,
            "table": table,
            "file": str(path),
            "size": size,
            "mtime_ns": mtime_ns,
            "format": fmt,
            "null": null,
            "line": line,
            "offset": offset,
            **totals,
            "rejects": str(rejects.resolve()),
            "rejects_size": rejects_size,
        }
    )


def read_checkpoint(
    text: str, where: str, *, size: int, mtime_ns: int, fmt: str, null: str | None
) -> dict:
    """Parse a checkpoint and check that the load it records can go on.

    :param text: the saved checkpoint
    :param where: names the load in messages (``load of 'x.csv' into 'people'``)
    :param size: the file's size now
    :param mtime_ns: the file's modification time now
    :param fmt: the format of this run
    :param null: the null token of this run
    :return: the checkpoint document
    :raises LoadError: for an unreadable checkpoint, a file changed since it was saved, or
        options other than those the load was started with
    """
    try:
        point = json.loads(text)
        if point.get("version") != VERSION:
            raise ValueError(f"version {point.get('version')!r}")
        for key in _INTEGERS:
            if not isinstance(point[key], int):
                raise ValueError(f"{key} is not an integer")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LoadError(
            f"cannot resume the {where}: its checkpoint is unreadable ({exc}); "
            "load again without resume"
        ) from exc
    if (point["size"], point["mtime_ns"]) != (size, mtime_ns):
        raise LoadError(
            f"cannot resume the {where}: the file changed since the checkpoint (size "
            f"{point['size']:,} -> {size:,} bytes, modified "
            f"{_when(point['mtime_ns'])} -> {_when(mtime_ns)}); resuming would "
            "skip or repeat rows, so load it again without resume"
        )
    for key, now in (("format", fmt), ("null", null)):
        if point.get(key) != now:
            raise LoadError(
                f"cannot resume the {where}: it was started with {key} "
                f"{point.get(key)!r}, not {now!r}; resume with the same options"
            )
    return point


def rejects_kept(point: dict | None, rejects: Path) -> int:
    """How much of the rejects file a run keeps: what the checkpoint counted, if it names
    the same file; nothing for a fresh load."""
    if point is not None and point.get("rejects") == str(rejects.resolve()):
        return point.get("rejects_size", 0)
    return 0


def _when(mtime_ns: int) -> str:
    return datetime.fromtimestamp(mtime_ns / 1e9).isoformat(timespec="seconds")
