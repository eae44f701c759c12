"""Open a store from a URL: ``hbase://host:port[,…][?…]``, ``sqlite:///path.db`` or ``sqlite://``."""

from __future__ import annotations

import math
import os
from urllib.parse import parse_qs, urlsplit

from culvert_py.errors import StoreError
from culvert_py.store.base import Region, RowMutation, Store, Table

__all__ = ["DEFAULT_URL", "Region", "RowMutation", "Store", "Table", "default_url", "open_store"]

#: The store the CLI uses when neither ``--store`` nor ``CULVERT_STORE`` says otherwise.
DEFAULT_URL = "sqlite:///culvert.db"

ACCEPTED_FORMS = (
    "hbase://HOST:PORT[,HOST:PORT…][?thrift2_port=N&pool_size=N&timeout_ms=N"
    "&sidecar=HOST:PORT[,…]] "
    "(several gateways; HOST:PORT:THRIFT2_PORT gives one its own Thrift2 port), "
    "sqlite:///PATH.db[?mode=ro&timeout=SECONDS] (a file), sqlite:// (in memory)"
)

_HBASE_OPTIONS = {
    "thrift2_port": int,
    "pool_size": int,
    "timeout_ms": int,
    "retries": int,
    "retry_seconds": float,
    "sidecar": str,
}


def default_url() -> str:
    """The store URL from env ``CULVERT_STORE``, else :data:`DEFAULT_URL`."""
    return os.environ.get("CULVERT_STORE") or DEFAULT_URL


def open_store(url: str) -> Store:
    """Open the store ``url`` names.

    :param url: ``hbase://host:port[?thrift2_port=9091&pool_size=16&timeout_ms=120000]``
        (``thrift2_port=0`` runs without the Thrift2 gateway; several gateways are
        comma-separated, ``hbase://h1:9090,h2:9090``, and ``host:9092:9093`` gives one its
        own Thrift2 port: see :mod:`culvert_py.store.endpoints`; ``sidecar=HOST:PORT`` uses
        checkAndMutate sidecars for batched conditional writes), ``sqlite:///path.db`` (with
        ``?mode=ro`` to only read it, ``?timeout=30`` for the seconds to wait for other
        processes' locks) or ``sqlite://`` for an in-memory database
    :return: an open :class:`Store`; use it as a context manager
    :raises StoreError: for a malformed URL (naming it and the accepted forms), an
        unreachable store, or a path that cannot be opened as a SQLite store
    """
    if not isinstance(url, str) or "://" not in url:
        raise StoreError(f"malformed store URL {url!r}; accepted forms: {ACCEPTED_FORMS}")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unbalanced IPv6 bracket
        raise StoreError(
            f"malformed store URL {url!r} ({exc}); accepted forms: {ACCEPTED_FORMS}"
        ) from exc
    if parts.scheme == "sqlite":
        return _open_sqlite(url, parts)
    if parts.scheme == "hbase":
        return _open_hbase(url, parts)
    raise StoreError(f"unknown store scheme in {url!r}; accepted forms: {ACCEPTED_FORMS}")


def _open_sqlite(url: str, parts) -> Store:
    from culvert_py.store.sqlite import DEFAULT_TIMEOUT, SQLiteStore

    if parts.netloc:
        raise StoreError(
            f"malformed store URL {url!r}: a SQLite URL has no host; "
            f"accepted forms: {ACCEPTED_FORMS}"
        )
    # As in SQLAlchemy: sqlite:///relative.db, sqlite:////absolute/path.db.
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    read_only, timeout = False, DEFAULT_TIMEOUT
    for key, values in parse_qs(parts.query, keep_blank_values=True).items():
        value = values[-1]
        if key == "mode" and value in ("ro", "rw"):
            read_only = value == "ro"
        elif key == "mode":
            raise StoreError(f"option mode={value!r} in {url!r}: expected mode=ro or mode=rw")
        elif key == "timeout":
            try:
                timeout = float(value)
            except ValueError:
                timeout = -1.0
            if not 0 < timeout < math.inf:  # also false for nan
                raise StoreError(
                    f"option timeout={value!r} in {url!r}: expected a positive number of seconds"
                )
        else:
            raise StoreError(f"unknown option {key!r} in store URL {url!r} (known: mode, timeout)")
    if read_only and not path:
        raise StoreError(f"malformed store URL {url!r}: an in-memory store cannot be read-only")
    return SQLiteStore(path or ":memory:", read_only=read_only, timeout=timeout)


def _open_hbase(url: str, parts) -> Store:
    from culvert_py.store.endpoints import parse_gateways, parse_sidecars
    from culvert_py.store.hbase import HBaseStore

    if not parts.netloc or "@" in parts.netloc or parts.path not in ("", "/"):
        raise StoreError(
            f"malformed store URL {url!r}: need hbase://HOST:PORT; accepted forms: {ACCEPTED_FORMS}"
        )
    options: dict[str, float] = {}
    for key, values in parse_qs(parts.query, keep_blank_values=True).items():
        if key not in _HBASE_OPTIONS:
            raise StoreError(
                f"unknown option {key!r} in store URL {url!r} (known: {', '.join(_HBASE_OPTIONS)})"
            )
        try:
            options[key] = _HBASE_OPTIONS[key](values[-1])
        except ValueError as exc:
            raise StoreError(f"option {key}={values[-1]!r} in {url!r} is not a number") from exc
    thrift2_port = int(options.pop("thrift2_port", 9091)) or None
    gateways = parse_gateways(parts.netloc, thrift2_port, url)
    sidecars = parse_sidecars(str(options.pop("sidecar")), url) if "sidecar" in options else []
    return HBaseStore(gateways=gateways, sidecars=sidecars, **options)  # type: ignore[arg-type]
