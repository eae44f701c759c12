"""The ``culvert demo``: a sample table with every index kind, five queries vs full scans."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import click

from culvert_py.query.plan import NO_INDEX
from culvert_py.schema import parse_schema

CITIES = ["Oslo", "Lima", "Pune", "Kyiv", "Quito", "Accra", "Hanoi", "Perth", "Tunis", "Riga"]
WORDS = ["hbase", "tea", "chess", "rust", "jazz", "sailing", "maps", "bread", "piano", "go"]

QUERIES = [
    ("equality on a term index", "city = 'Riga'"),
    ("range on a covered index", "age BETWEEN 30 AND 32"),
    (
        "composite, leftmost prefix + range",
        "city = 'Oslo' AND joined >= TIMESTAMP '2024-06-01T00:00:00Z'",
    ),
    ("text index", "CONTAINS(bio, 'sailing') AND age < 40"),
    ("partial index (active only)", "score > 9.5 AND active = true"),
]


def demo_schema(name: str):
    """The people example (every index kind) under ``name``."""
    return parse_schema(
        {
            "tables": {
                name: {
                    "row_key": ["id"],
                    "salt_buckets": 8,
                    "columns": {
                        "id": "str",
                        "name": "str",
                        "age": "int",
                        "score": "float",
                        "city": "str",
                        "joined": "datetime",
                        "active": "bool",
                        "bio": "str",
                    },
                    "indexes": {
                        "by_city": {"kind": "term", "columns": ["city"]},
                        "by_age": {"kind": "range", "columns": ["age"], "include": ["name"]},
                        "by_city_joined": {"kind": "range", "columns": ["city", "joined"]},
                        "bio_words": {"kind": "text", "columns": ["bio"]},
                        "active_by_score": {
                            "kind": "range",
                            "columns": ["score"],
                            "where": "active = true",
                            "salt": "value",
                        },
                    },
                }
            }
        }
    )


def people(n: int, seed: int = 42):
    rnd = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(n):
        yield {
            "id": f"u{i:06d}",
            "name": f"person {i}",
            "age": rnd.randrange(18, 90),
            "score": round(rnd.random() * 10, 3),
            "city": rnd.choice(CITIES),
            "joined": start + timedelta(minutes=rnd.randrange(525_600)),
            "active": rnd.random() < 0.7,
            "bio": " ".join(rnd.sample(WORDS, 3)).capitalize(),
        }


def run_demo(client, rows: int, echo: Callable[[str], None]) -> None:
    """Run the demo on ``client``'s store, printing as it goes."""
    echo(f"store: {client.store.describe()}")
    name = f"demo_{uuid.uuid4().hex[:6]}"
    client.apply_schema(demo_schema(name))
    table = client.table(name)
    try:
        batch = max(rows // 20, 100)
        t0 = time.perf_counter()
        with click.progressbar(length=rows, label=f"loading {rows} people") as bar:
            chunk: list[dict] = []
            for row in people(rows):
                chunk.append(row)
                if len(chunk) == batch:
                    table.put_many(chunk)
                    bar.update(len(chunk))
                    chunk = []
            if chunk:
                table.put_many(chunk)
                bar.update(len(chunk))
        load_s = time.perf_counter() - t0
        echo(
            f"loaded {rows} rows in {load_s:.1f}s ({rows / load_s:,.0f} rows/s) "
            "through the consistent write protocol, 5 indexes"
        )
        table.refresh_stats()
        echo("")
        for title, where in QUERIES:
            t0 = time.perf_counter()
            found = list(table.query(where, columns=["id", "name", "age", "city"]))
            index_ms = (time.perf_counter() - t0) * 1000
            t0 = time.perf_counter()
            full = list(
                table.query(where, columns=["id", "name", "age", "city"], use_index=NO_INDEX)
            )
            full_ms = (time.perf_counter() - t0) * 1000
            assert sorted(r["id"] for r in found) == sorted(r["id"] for r in full)
            echo(f"== {title}: {where}")
            echo(table.explain(where, columns=["id", "name", "age", "city"]).text)
            echo(
                f"-> {len(found)} rows in {index_ms:.1f} ms; full scan {full_ms:.1f} ms "
                f"({full_ms / max(index_ms, 1e-6):.1f}x); same rows: yes"
            )
            echo("")
    finally:
        client.drop_table(name)
    echo("demo table dropped. Next: culvert schema apply schemas/examples/people.toml")
