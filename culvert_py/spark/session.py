"""The Spark side of a job: sessions for the driver, one client per executor process.

Executors learn everything from the driver: the store URL (and the plan, the table
definition) travel inside each task's closure, so nothing on the cluster needs
``CULVERT_STORE`` or a schema file, only the installed package.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading

from culvert_py.client import Client, connect
from culvert_py.errors import ArgumentError, CulvertError

log = logging.getLogger(__name__)

#: What ``--spark`` runs on without ``--master``: two local worker threads.
DEFAULT_MASTER = "local[2]"
#: Python package that must be installed for Spark jobs (the ``[spark]`` extra).
INSTALL_HINT = "pip install 'culvert_py[spark]'"


class SparkMissing(CulvertError):
    """pyspark (or the Java it drives) is not available on this machine."""


def require_pyspark():
    """The :mod:`pyspark` module.

    :raises SparkMissing: when it is not installed, naming the extra to install
    """
    try:
        import pyspark
    except ImportError as exc:
        raise SparkMissing(f"Spark jobs need pyspark: {INSTALL_HINT}") from exc
    return pyspark


def spark_session(master: str | None = None, app_name: str = "culvert"):
    """A SparkSession for culvert jobs: the active one, or a new one on ``master``.

    Local masters (``local[2]``, ``local[2,3]`` for up to 3 attempts per task) run their
    Python workers on this interpreter, so they import the culvert_py installed here. Time
    zone is UTC so that timestamps mean the same on every executor.

    :param master: a Spark master URL; ``None``: the active session's, else the one
        ``spark-submit`` was given, else :data:`DEFAULT_MASTER`
    :param app_name: the application name Spark shows
    :return: a :class:`pyspark.sql.SparkSession`
    :raises ArgumentError: for a master that is not a non-empty string
    :raises SparkMissing: without pyspark, or when Spark cannot start (no Java)
    """
    if master is not None and (not isinstance(master, str) or not master.strip()):
        raise ArgumentError(f"master={master!r:.60}: expected a Spark master URL, e.g. local[2]")
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    builder = SparkSession.builder.appName(app_name)
    builder = builder.config("spark.sql.session.timeZone", "UTC")
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    # Under spark-submit the JVM is already up with the --master it was given (its port is
    # in PYSPARK_GATEWAY_PORT): setting a master here would override it.
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    if master is not None or not submitted:
        builder = builder.master(master or DEFAULT_MASTER)
    if not submitted and (master or DEFAULT_MASTER).startswith("local"):
        # The Python workers start from PYSPARK_PYTHON (default: ``python3`` on the PATH,
        # which need not have culvert_py); a local job is meant to run this interpreter.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.ui.enabled", "false")
    try:
        return builder.getOrCreate()
    except Exception as exc:  # py4j raises plain exceptions when the JVM does not start
        raise SparkMissing(f"Spark did not start on {master or DEFAULT_MASTER}: {exc}") from exc


class _ExecutorClients:
    """Clients of one Python process, by store URL, closed when the process exits.

    Spark reuses a Python worker process for many tasks (``spark.python.worker.reuse``, on
    by default), so a client kept here serves every task the process runs: one connection
    pool per executor process, not one per task.
    """

    def __init__(self) -> None:
        self._clients: dict[str, Client] = {}
        self._lock = threading.Lock()
        atexit.register(self.close)

    def get(self, url: str) -> Client:
        """The process's client on ``url``, opened on first use."""
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                client = connect(url)
                self._clients[url] = client
                log.info("opened a culvert client on %s in this executor process", url)
            return client

    def close(self) -> None:
        """Close every client (at process exit)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            try:
                client.close()
            except Exception:  # exiting anyway: a failed close must not hide the exit status
                log.exception("closing a culvert client")


#: The one registry of this process. Module state on purpose: a Spark task is a function
#: call in a reused process, and this is the only place a pool can outlive one task.
_CLIENTS = _ExecutorClients()


def executor_client(url: str) -> Client:
    """The client of this executor process on ``url`` (see :class:`_ExecutorClients`)."""
    return _CLIENTS.get(url)


def check_url(url: object) -> str:
    """``url`` when it is a store URL an executor can open.

    :raises ArgumentError: for a URL that is not a non-empty string
    """
    if not isinstance(url, str) or "://" not in url:
        raise ArgumentError(
            f"url={url!r:.60}: expected a store URL every executor can reach, "
            "e.g. hbase://thrift-host:9090"
        )
    return url
