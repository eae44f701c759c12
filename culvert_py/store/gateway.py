"""Calls to one HBase cluster's Thrift gateways, retried through transient failures.

A :class:`Gateway` holds a :class:`~culvert_py.store.pool.ConnectionPool` of happybase
connections to the Thrift1 gateway and one of Thrift2 (``THBaseService``) clients built from
the project's IDL (``thrift2.thrift``). Every call runs with a pooled connection and is
retried with exponential backoff and full jitter while its failure is transient (connection
reset, gateway restart, region moving), for at most ``retries`` times and ``retry_seconds``.

Each failure is classified once, by :func:`classify`, from its exception type:

- socket, transport and pool-timeout errors are transient;
- a declared gateway exception (``IOError``, ``IllegalArgument``, ``AlreadyExists``) carries
  HBase's Java exception only as text, so its message is read — here and nowhere else — for
  the server-side names that mean "try again shortly", or "that scanner is gone"
  (:class:`ScannerLostError`, which is never retried in place); any other is permanent;
- anything else is not the store's, and propagates unchanged.

Every error raised keeps the Thrift error as its ``__cause__``, so ``--debug`` shows it.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import happybase
import happybase.connection
import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.rpc import make_client
from thriftpy2.thrift import TApplicationException, TException
from thriftpy2.transport import TBufferedTransportFactory, TTransportException

from culvert_py.errors import CapabilityError, StoreError, TransientStoreError
from culvert_py.store.pool import ConnectionPool, PoolTimeoutError

log = logging.getLogger(__name__)

__all__ = [
    "OTHER",
    "PERMANENT",
    "SCANNER_LOST",
    "START_HINT",
    "TRANSIENT",
    "Gateway",
    "RetriesExhaustedError",
    "ScannerLostError",
    "classify",
    "first_line",
    "message_of",
    "thrift1",
    "thrift2",
]

_T = TypeVar("_T")

#: The Thrift1 IDL module happybase's own client is built from (happybase 1.3 loads its
#: ``Hbase.thrift`` as ``Hbase_thrift`` and re-exports no exception types): its ``IOError``,
#: ``IllegalArgument``, ``Mutation``, ``TScan`` … are the very classes the client raises and
#: reads. Taken from the service class, not imported by name, so it cannot depend on import
#: order or be a second, look-alike load of the IDL.
thrift1 = sys.modules[happybase.connection.Hbase.__module__]

#: The Thrift2 IDL module, from the subset of ``THBaseService`` this project uses.
thrift2 = thriftpy2.load(
    os.path.join(os.path.dirname(__file__), "thrift2.thrift"), module_name="culvert_thrift2_thrift"
)

#: How to start the dev server, repeated in every "cannot reach" message.
START_HINT = (
    "start the dev server with `hbase/hbase-local start`, or pass the URL of a running gateway"
)

#: Exceptions a gateway declares in its IDL: the reply was read whole, so the socket is fine.
_DECLARED = (
    thrift1.IOError,
    thrift1.IllegalArgument,
    thrift1.AlreadyExists,
    thrift2.TIOError,
    thrift2.TIllegalArgument,
)

# Server-side exception names that mean "try again shortly", not "you asked for nonsense".
_TRANSIENT_MARKERS = (
    "NotServingRegionException",
    "RegionMovedException",
    "RegionOpeningException",
    "RegionTooBusyException",
    "ServerNotRunningYetException",
    "PleaseHoldException",
    "CallQueueTooBigException",
    "RetriesExhaustedException",
    "ConnectException",
    "CallTimeoutException",
    "SocketTimeoutException",
)
# A scanner the gateway no longer knows: closed, lease expired, or the gateway restarted (the
# Thrift1 gateway answers "scanner ID is invalid", Thrift2 "Invalid scanner Id"; a region
# server's UnknownScanner, lease and out-of-order errors come wrapped in an IOError's text).
_LOST_SCANNER_MARKERS = (
    "scanner ID is invalid",
    "Invalid scanner Id",
    "UnknownScanner",
    "OutOfOrderScanner",
    "Lease",
)

TRANSIENT, PERMANENT, SCANNER_LOST, OTHER = "transient", "permanent", "scanner lost", "other"


class RetriesExhaustedError(TransientStoreError):
    """A transient failure outlasted the retries; its ``__cause__`` is the last failure."""


class ScannerLostError(StoreError):
    """The gateway no longer knows a scanner id; the scan must reopen, not retry the call."""


def classify(exc: BaseException) -> str:
    """Say what a failed call's exception means.

    :return: :data:`TRANSIENT` (retry it), :data:`SCANNER_LOST` (reopen the scan),
        :data:`PERMANENT` (a :class:`StoreError` now) or :data:`OTHER` (not the store's)
    """
    if isinstance(exc, TTransportException | OSError | PoolTimeoutError):
        return TRANSIENT  # OSError covers ConnectionError, socket.timeout and TimeoutError
    if isinstance(exc, _DECLARED):
        text = message_of(exc)
        if any(marker in text for marker in _TRANSIENT_MARKERS):
            return TRANSIENT
        if any(marker in text for marker in _LOST_SCANNER_MARKERS):
            return SCANNER_LOST
        return PERMANENT
    if isinstance(exc, TApplicationException):
        return PERMANENT
    return OTHER


def message_of(exc: BaseException) -> str:
    """The whole text of an exception: a Thrift exception's ``message`` field (often bytes,
    holding a Java stack trace), or ``str(exc)``."""
    text = getattr(exc, "message", None) or str(exc)
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (at most 300 characters), or its type's name."""
    text = message_of(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _reusable_after(exc: BaseException) -> bool:
    return isinstance(exc, _DECLARED)


class Gateway:
    """Pooled, retried calls to the Thrift1 and (optional) Thrift2 gateways of one cluster.

    :param host: gateway host
    :param port: Thrift1 gateway port
    :param thrift2_port: Thrift2 gateway port, or ``None`` to run without it
    :param pool_size: pooled connections per gateway (one per concurrent caller)
    :param timeout_ms: socket timeout of every call, and the longest wait for a connection
    :param retries: at most this many retries of a transient failure ...
    :param retry_seconds: ... and for at most this long
    :raises StoreError: when the Thrift1 gateway cannot be reached
    """

    def __init__(
        self,
        host: str,
        port: int,
        thrift2_port: int | None,
        pool_size: int,
        timeout_ms: int,
        retries: int,
        retry_seconds: float,
    ) -> None:
        self.host, self.port, self.thrift2_port = host, port, thrift2_port
        self.address = f"{host}:{port}"
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.retry_seconds = retry_seconds
        self._thrift1: ConnectionPool[happybase.Connection] = ConnectionPool(
            self._connect_thrift1,
            pool_size,
            self.address,
            _reusable_after,
            check_out=happybase.Connection.open,
        )
        try:
            # Connect once now, so that a wrong address fails here and not on first use.
            with self._thrift1.connection(timeout=self.timeout_ms / 1000):
                pass
        except (TException, OSError) as exc:
            raise StoreError(
                f"cannot reach the HBase Thrift gateway at {self.address}: {first_line(exc)}; "
                + START_HINT
            ) from exc
        self._thrift2: ConnectionPool[Any] | None = None
        #: Why Thrift2 calls are unavailable, or ``None`` when they are available.
        self.thrift2_error = self._probe_thrift2(pool_size)

    def _connect_thrift1(self) -> happybase.Connection:
        return happybase.Connection(self.host, self.port, timeout=self.timeout_ms)

    def _connect_thrift2(self) -> Any:
        return make_client(
            thrift2.THBaseService,
            self.host,
            self.thrift2_port,
            timeout=self.timeout_ms,
            trans_factory=TBufferedTransportFactory(),
            proto_factory=TBinaryProtocolFactory(),
        )

    def _probe_thrift2(self, pool_size: int) -> str | None:
        if not self.thrift2_port:
            return "no Thrift2 port configured (thrift2_port=0)"
        where = f"{self.host}:{self.thrift2_port}"
        pool: ConnectionPool[Any] = ConnectionPool(
            self._connect_thrift2, pool_size, where, _reusable_after
        )
        try:
            with pool.connection(timeout=self.timeout_ms / 1000) as client:
                kind = client.getThriftServerType()
        except (TException, OSError) as exc:
            pool.close()
            return f"no Thrift2 gateway at {where} ({first_line(exc)})"
        if kind != thrift2.TThriftServerType.TWO:
            pool.close()
            return f"{where} is a Thrift1 gateway, not Thrift2"
        self._thrift2 = pool
        return None

    def call(self, what: str, fn: Callable[[happybase.Connection], _T]) -> _T:
        """Run ``fn`` with a pooled Thrift1 connection, retrying transient failures.

        :param what: the operation, for messages (``"read 3 rows of 'people'"``)
        :raises RetriesExhaustedError: when a transient failure outlasts the retries
        :raises ScannerLostError: when the gateway no longer knows the scanner ``fn`` used
        :raises StoreError: when HBase refuses the call
        """
        return self._retrying(what, self.address, self._thrift1, fn)

    def call_thrift2(self, what: str, fn: Callable[[Any], _T]) -> _T:
        """Run ``fn`` with a pooled Thrift2 client, retrying transient failures.

        :raises CapabilityError: when there is no Thrift2 gateway
        :raises RetriesExhaustedError: when a transient failure outlasts the retries
        :raises StoreError: when HBase refuses the call
        """
        if self._thrift2 is None:
            raise CapabilityError(f"{what}: {self.thrift2_error}")
        return self._retrying(what, self._thrift2.name, self._thrift2, fn)

    def call_once(self, what: str, fn: Callable[[happybase.Connection], object]) -> bool:
        """Run ``fn`` once with a Thrift1 connection free within 5 s, for clean-up that the
        server does by itself anyway (closing a scanner); a failure is logged, not raised.

        :return: whether ``fn`` ran without error
        """
        return self._once(what, self.address, self._thrift1, fn)

    def call_once_thrift2(self, what: str, fn: Callable[[Any], object]) -> bool:
        """:meth:`call_once` with a Thrift2 client (``False`` when there is no Thrift2)."""
        if self._thrift2 is None:
            return False
        return self._once(what, self._thrift2.name, self._thrift2, fn)

    @staticmethod
    def _once(what: str, address: str, pool: ConnectionPool, fn: Callable[[Any], object]) -> bool:
        try:
            with pool.connection(timeout=5) as conn:
                fn(conn)
        except Exception:  # clean-up only: the server expires what we fail to release
            log.debug("%s on %s failed", what, address, exc_info=True)
            return False
        return True

    def close(self) -> None:
        """Close every pooled connection; calls afterwards raise :class:`StoreError`."""
        self._thrift1.close()
        if self._thrift2 is not None:
            self._thrift2.close()

    def _retrying(
        self, what: str, address: str, pool: ConnectionPool, fn: Callable[[Any], _T]
    ) -> _T:
        delay = 0.05
        started = time.monotonic()
        for n in range(self.retries + 1):
            try:
                with pool.connection(timeout=self.timeout_ms / 1000) as conn:
                    return fn(conn)
            except Exception as exc:
                kind = classify(exc)
                if kind == OTHER:
                    raise
                if kind == SCANNER_LOST:
                    raise ScannerLostError(f"{what} on {address}: {first_line(exc)}") from exc
                if kind == PERMANENT:
                    raise StoreError(f"{what} on {address}: {first_line(exc)}") from exc
                if n == self.retries or time.monotonic() - started > self.retry_seconds:
                    raise RetriesExhaustedError(
                        f"{what} on {address}: still failing after {n + 1} attempts: "
                        f"{first_line(exc)}; is HBase up? {START_HINT}"
                    ) from exc
                log.info("%s on %s failed (%s); retry %d", what, address, first_line(exc), n + 1)
                time.sleep(random.uniform(0, delay))  # full jitter
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")
