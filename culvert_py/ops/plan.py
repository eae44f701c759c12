"""A build's stored plan: its key ranges, with one checkpoint per range, in the meta table.

The plan is made once per build, so that every shard and every resumed run works on the
same ranges even if regions split in the meantime. It is stored as the meta document
``PLAN_DOC / <table>.<index>``; the checkpoint of range ``r`` as
``RANGE_DOC / <table>.<index>.<plan id>.<r:05d>``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from culvert_py.meta import Meta

#: Meta document kind of build plans, named ``<table>.<index>``.
PLAN_DOC = "build"
#: Meta document kind of per-range checkpoints, ``<table>.<index>.<plan id>.<range>``.
RANGE_DOC = "build-range"


@dataclass
class BuildPlan:
    """The key ranges of one build, shared by its shards.

    :ivar id: unique per plan; names its checkpoints
    :ivar since: timestamp (ms) of the ``BUILDING`` state the plan was made for
    :ivar shards: how many shards split it
    :ivar ranges: ``(start, end)`` key ranges of the primary table
    """

    id: str
    since: int
    shards: int
    ranges: list[tuple[bytes, bytes]]

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": 1,
                "id": self.id,
                "since": self.since,
                "shards": self.shards,
                "ranges": [[s.hex(), e.hex()] for s, e in self.ranges],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> BuildPlan:
        data = json.loads(text)
        ranges = [(bytes.fromhex(s), bytes.fromhex(e)) for s, e in data["ranges"]]
        return cls(data["id"], data["since"], data["shards"], ranges)


@dataclass
class Checkpoint:
    """How far the build of one range got.

    :ivar name: the document's name
    :ivar after: the last primary key whose entries are written, or ``None``
    :ivar done: whether the whole range is built
    :ivar ts: timestamp of the stored version: the next save goes above it
    """

    name: str
    after: bytes | None = None
    done: bool = False
    rows: int = 0
    entries: int = 0
    ts: int = 0

    def to_json(self) -> str:
        after = None if self.after is None else self.after.hex()
        return json.dumps(
            {"after": after, "done": self.done, "rows": self.rows, "entries": self.entries}
        )

    @classmethod
    def from_doc(cls, name: str, doc: tuple[str, int] | None) -> Checkpoint:
        if doc is None:
            return cls(name)
        data = json.loads(doc[0])
        after = None if data["after"] is None else bytes.fromhex(data["after"])
        return cls(name, after, data["done"], data["rows"], data["entries"], doc[1])


def _load_plan(meta: Meta, name: str) -> BuildPlan | None:
    """The stored plan named ``name``, or ``None``."""
    found = meta.load_doc(PLAN_DOC, name)
    return BuildPlan.from_json(found[0]) if found else None


def _discard_plan(meta: Meta, name: str) -> None:
    """Delete the plan named ``name`` with all of its checkpoints."""
    meta.delete_doc(PLAN_DOC, name)
    meta.delete_docs(RANGE_DOC, name + ".")
