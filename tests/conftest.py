"""Shared fixtures: a ``store`` parametrised over the embedded SQLite store and real HBase.

The HBase parameter finds the server through ``CULVERT_TEST_HBASE=host:port`` (the Thrift1
gateway; the Thrift2 gateway is assumed on 9091 unless ``CULVERT_TEST_HBASE_THRIFT2`` says
otherwise, or give a full ``hbase://`` URL). When it is unset or unreachable the HBase tests
FAIL with instructions: they never skip, because a green run without HBase proves nothing.

Tests of conditional writes also run on a third path, ``hbase+sidecar``: the same HBase with
the checkAndMutate sidecar (``CULVERT_TEST_SIDECAR=host:port``, default 127.0.0.1:9089, which
``hbase/hbase-local start`` runs); those tests fail, never skip, when it does not answer.
A module opts in by defining its own ``store`` fixture over :data:`WRITE_PATHS` with
:func:`open_kind`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from culvert_py.errors import StoreError
from culvert_py.store import open_store

HOW_TO_START = (
    "start HBase with `hbase/hbase-local start` and run pytest with "
    "CULVERT_TEST_HBASE=127.0.0.1:9090 (the README's test command does both), or deselect "
    "the HBase tests explicitly with `-m 'not hbase'`"
)


def hbase_test_url() -> str:
    """The URL of the test HBase, or fail the test with instructions."""
    target = os.environ.get("CULVERT_TEST_HBASE")
    if not target:
        pytest.fail(f"CULVERT_TEST_HBASE is not set: {HOW_TO_START}", pytrace=False)
    if target.startswith("hbase://"):
        return target
    thrift2 = os.environ.get("CULVERT_TEST_HBASE_THRIFT2", "9091")
    return f"hbase://{target}?thrift2_port={thrift2}&pool_size=16"


@pytest.fixture(scope="session")
def hbase_store():
    """One HBase store shared by the session (its connection pool is thread-safe)."""
    url = hbase_test_url()
    try:
        store = open_store(url)
    except StoreError as exc:
        pytest.fail(f"HBase at {url} is unreachable ({exc}): {HOW_TO_START}", pytrace=False)
    yield store
    store.close()


def sidecar_test_url() -> str:
    """The URL of the test HBase with the test sidecar named in it."""
    url = hbase_test_url()
    sidecar = os.environ.get("CULVERT_TEST_SIDECAR", "127.0.0.1:9089")
    return url + ("&" if "?" in url else "?") + f"sidecar={sidecar}"


@pytest.fixture(scope="session")
def hbase_sidecar_store():
    """One HBase store with the checkAndMutate sidecar in use, shared by the session."""
    from culvert_py.store.base import CAP_CHECK_AND_MUTATE_MANY

    url = sidecar_test_url()
    try:
        store = open_store(url)
    except StoreError as exc:
        pytest.fail(f"HBase at {url} is unreachable ({exc}): {HOW_TO_START}", pytrace=False)
    if CAP_CHECK_AND_MUTATE_MANY not in store.capabilities:
        store.close()
        pytest.fail(
            f"no checkAndMutate sidecar answers for {url}: `hbase/hbase-local start` runs one "
            "on 127.0.0.1:9089 (or `hbase/hbase-local sidecar start PORT` and "
            "CULVERT_TEST_SIDECAR=127.0.0.1:PORT)",
            pytrace=False,
        )
    yield store
    store.close()


STORE_KINDS = ["sqlite", pytest.param("hbase", marks=pytest.mark.hbase)]
#: The write paths of conditional writes: SQLite, HBase through Thrift2 (one call per row)
#: and HBase through the sidecar (batched).
WRITE_PATHS = [*STORE_KINDS, pytest.param("hbase+sidecar", marks=pytest.mark.hbase)]


def own_meta_table() -> Iterator[None]:
    """Run under a meta table of one's own (as a module-scoped fixture): the dev HBase is
    shared with other branches, whose schema changes bump the shared meta's generation and
    make a table re-create its writer (and lose a test's ``on_step`` hook) mid-test."""
    import culvert_py.meta

    name = f"__culvert_meta_{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(culvert_py.meta, "META_TABLE", name)
        yield
    if os.environ.get("CULVERT_TEST_HBASE"):
        with open_store(hbase_test_url()) as store:
            store.delete_table(name)


def open_kind(request, tmp_path) -> Iterator:
    """The store ``request.param`` names: a fresh SQLite file, or a shared HBase store."""
    if request.param == "sqlite":
        with open_store(f"sqlite:///{tmp_path / 'store.db'}") as s:
            yield s
    elif request.param == "hbase+sidecar":
        yield request.getfixturevalue("hbase_sidecar_store")
    else:
        yield request.getfixturevalue("hbase_store")


@pytest.fixture(params=STORE_KINDS)
def store(request, tmp_path) -> Iterator:
    """A store of each kind: a fresh SQLite file, or the shared HBase."""
    yield from open_kind(request, tmp_path)


@pytest.fixture
def make_table(store):
    """Factory: ``make_table(families=("f",), split_keys=())`` creates a uniquely named
    table on ``store`` and drops it after the test."""
    created: list[str] = []

    def make(families=("f",), split_keys=(), max_versions=1):
        name = f"t_{uuid.uuid4().hex[:12]}"
        store.create_table(name, list(families), list(split_keys), max_versions=max_versions)
        created.append(name)
        return store.table(name)

    yield make
    for name in created:
        store.delete_table(name)


PEOPLE_TOML = os.path.join(os.path.dirname(__file__), "..", "schemas", "examples", "people.toml")


@pytest.fixture
def db(store):
    """A culvert client on ``store`` (the store outlives it)."""
    from culvert_py.client import Client

    client = Client(store, workers=16, close_store=False)
    yield client
    client.close()


@pytest.fixture
def people(db):
    """The people example table under a unique name, applied to ``db``; dropped afterwards."""
    yield from people_table(db)


def people_table(db, primary_buckets: int = 1, indexed: bool = True):
    """Apply the people example under a unique name, yield its table, drop it afterwards.

    :param primary_buckets: salt buckets of its primary table (1: unsalted)
    :param indexed: keep the example's indexes (``False``: none)
    """
    import tomllib

    from culvert_py.schema import parse_schema

    with open(PEOPLE_TOML, "rb") as f:
        data = tomllib.load(f)
    name = f"people_{uuid.uuid4().hex[:10]}"
    spec = data["tables"]["people"]
    if primary_buckets > 1:
        spec["primary_buckets"] = primary_buckets
    if not indexed:
        spec["indexes"] = {}
    data["tables"] = {name: spec}
    db.apply_schema(parse_schema(data))
    yield db.table(name)
    db.drop_table(name)
