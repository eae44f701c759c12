"""Opening stores by URL: accepted forms, and errors that say what to do."""

from __future__ import annotations

import pytest

from culvert_py.errors import StoreError
from culvert_py.store import DEFAULT_URL, default_url, open_store
from culvert_py.store.sqlite import SQLiteStore


def test_sqlite_urls_open_files_and_memory(tmp_path, monkeypatch):
    with open_store("sqlite://") as store:
        assert isinstance(store, SQLiteStore) and store.path == ":memory:"
    path = tmp_path / "x.db"
    with open_store(f"sqlite:///{path}") as store:  # four slashes: an absolute path
        store.create_table("t", ["f"])
        assert store.url == f"sqlite:///{path}"
    with open_store(f"sqlite:///{path}") as store:
        assert store.list_tables() == ["t"]  # a file store persists
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///relative.db") as store:  # three slashes: relative
        store.create_table("r", ["f"])
    assert (tmp_path / "relative.db").exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nonsense", "malformed store URL 'nonsense'; accepted forms: hbase://HOST:PORT"),
        ("mysql://h:1", "unknown store scheme in 'mysql://h:1'"),
        ("hbase://hostonly", "need hbase://HOST:PORT"),
        ("hbase://h:1?pool=3", "unknown option 'pool'"),
        ("hbase://h:1?pool_size=many", "option pool_size='many'"),
        ("sqlite://host/x.db", "a SQLite URL has no host"),
    ],
)
def test_malformed_urls_name_the_url_and_the_accepted_forms(url, message):
    with pytest.raises(StoreError) as err:
        open_store(url)
    assert message in str(err.value)


def test_unreachable_hbase_names_the_address_and_how_to_start_it():
    with pytest.raises(StoreError) as err:
        open_store("hbase://127.0.0.1:1?retries=0")
    text = str(err.value)
    assert "127.0.0.1:1" in text and "hbase/hbase-local start" in text
    assert "\n" not in text
    assert err.value.__cause__ is not None  # the Thrift error, for --debug


def test_default_url_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("CULVERT_STORE", raising=False)
    assert default_url() == DEFAULT_URL == "sqlite:///culvert.db"
    monkeypatch.setenv("CULVERT_STORE", "hbase://h:9090")
    assert default_url() == "hbase://h:9090"
