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

import itertools
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import happybase
import happybase.connection
import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.rpc import make_client
from thriftpy2.thrift import TApplicationException
from thriftpy2.transport import TBufferedTransportFactory, TTransportException

from culvert_py.errors import CapabilityError, StoreError, TransientStoreError
from culvert_py.store.endpoints import Endpoint
from culvert_py.store.health import HealthChecker, Target
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
    "Target",
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

#: Socket timeout of a health probe: a gateway that cannot answer a trivial call this fast
#: is as good as down for calls that have somewhere else to go.
_PROBE_MS = 2000

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


def _broken_connection(exc: BaseException) -> bool:
    # A socket or transport failure says the gateway itself failed (died, restarting, hung);
    # a declared exception or a pool timeout says HBase or this client is busy, not the gateway.
    return isinstance(exc, TTransportException | OSError)


class Gateway:
    """Pooled, retried calls to the Thrift1 and (optional) Thrift2 gateways of one cluster.

    With several gateway pairs, each gateway has its own pool; calls go round-robin over the
    gateways that answer, a call whose connection breaks marks its gateway down and is retried
    on another at once, and a :class:`~culvert_py.store.health.HealthChecker` brings a gateway
    back as soon as it answers again. Every write carries its timestamp, so a retried one is
    idempotent; a retried conditional write whose first attempt did apply reports "condition
    failed", which the write protocol recognises by its own version cell (see
    :mod:`culvert_py.write`).

    :param endpoints: the gateway pairs (at least one)
    :param pool_size: pooled connections per gateway (one per concurrent caller)
    :param timeout_ms: socket timeout of every call, and the longest wait for a connection
    :param retries: at most this many retries of a transient failure ...
    :param retry_seconds: ... and for at most this long
    :param check_interval: seconds between health-check rounds (several gateways only)
    :raises StoreError: when no Thrift1 gateway can be reached
    """

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        pool_size: int,
        timeout_ms: int,
        retries: int,
        retry_seconds: float,
        check_interval: float = 0.5,
    ) -> None:
        self.endpoints = tuple(endpoints)
        self.address = ",".join(f"{e.host}:{e.port}" for e in self.endpoints)
        self.timeout_ms = timeout_ms
        self.retries = retries
        self.retry_seconds = retry_seconds
        # One turn per protocol: a shared one could keep landing a protocol's calls on the
        # same gateway when callers alternate protocols in step.
        self._turns = (itertools.count(), itertools.count())
        self._thrift1 = [self._thrift1_target(e, pool_size) for e in self.endpoints]
        self._checker: HealthChecker | None = None
        # Probed now, so that a wrong address fails here and not on first use; a gateway that
        # is down while others answer is only marked down, to be used once it answers.
        if not [t for t in self._thrift1 if t.check(self.timeout_ms)]:
            for t in self._thrift1:
                t.pool.close()
            raise StoreError(
                f"cannot reach the HBase Thrift gateway at {self.address}: "
                f"{self._thrift1[0].why_down}; " + START_HINT
            ) from self._thrift1[0].last_error
        self._thrift2: list[Target] | None = None
        #: Why Thrift2 calls are unavailable, or ``None`` when they are available.
        self.thrift2_error = self._probe_thrift2(pool_size)
        targets = [*self._thrift1, *(self._thrift2 or [])]
        if len(self.endpoints) > 1:
            self._checker = HealthChecker(targets, check_interval, min(timeout_ms, _PROBE_MS))

    @property
    def targets(self) -> tuple[Target, ...]:
        """Every gateway in use, Thrift1 ones first (for reports and tests)."""
        return (*self._thrift1, *(self._thrift2 or []))

    def _thrift1_target(self, endpoint: Endpoint, pool_size: int) -> Target:
        name = f"{endpoint.host}:{endpoint.port}"

        def connect() -> happybase.Connection:
            return happybase.Connection(endpoint.host, endpoint.port, timeout=self.timeout_ms)

        def probe(timeout_ms: int) -> None:
            conn = happybase.Connection(endpoint.host, endpoint.port, timeout=timeout_ms)
            try:
                conn.client.getTableNames()
            finally:
                conn.close()

        pool: ConnectionPool[happybase.Connection] = ConnectionPool(
            connect, pool_size, name, _reusable_after, check_out=happybase.Connection.open
        )
        return Target(name, pool, probe)

    def _thrift2_target(self, host: str, port: int, pool_size: int) -> Target:
        def connect(timeout_ms: int = self.timeout_ms) -> Any:
            return make_client(
                thrift2.THBaseService,
                host,
                port,
                timeout=timeout_ms,
                trans_factory=TBufferedTransportFactory(),
                proto_factory=TBinaryProtocolFactory(),
            )

        def probe(timeout_ms: int) -> None:
            client = connect(timeout_ms)
            try:
                if client.getThriftServerType() != thrift2.TThriftServerType.TWO:
                    raise StoreError(f"{host}:{port} is a Thrift1 gateway, not Thrift2")
            finally:
                client.close()

        pool: ConnectionPool[Any] = ConnectionPool(
            connect, pool_size, f"{host}:{port}", _reusable_after
        )
        return Target(f"{host}:{port}", pool, probe)

    def _probe_thrift2(self, pool_size: int) -> str | None:
        ports = [(e.host, e.thrift2_port) for e in self.endpoints if e.thrift2_port]
        if not ports:
            return "no Thrift2 port configured (thrift2_port=0)"
        targets = [self._thrift2_target(host, port, pool_size) for host, port in ports]
        answered = [t for t in targets if t.check(self.timeout_ms)]
        if not answered:
            for t in targets:
                t.pool.close()
            why = targets[0].why_down
            if "is a Thrift1 gateway" in why:
                return why
            return f"no Thrift2 gateway at {targets[0].name} ({why})"
        # A port that answers as a Thrift1 gateway is a configuration mistake, not an outage.
        wrong = [t for t in targets if "is a Thrift1 gateway" in t.why_down]
        for t in wrong:
            log.warning("not using %s: %s", t.name, t.why_down)
            t.pool.close()
        self._thrift2 = [t for t in targets if t not in wrong]
        return None

    def call(self, what: str, fn: Callable[[happybase.Connection], _T]) -> _T:
        """Run ``fn`` with a pooled Thrift1 connection, retrying transient failures.

        :param what: the operation, for messages (``"read 3 rows of 'people'"``)
        :raises RetriesExhaustedError: when a transient failure outlasts the retries
        :raises ScannerLostError: when the gateway no longer knows the scanner ``fn`` used
        :raises StoreError: when HBase refuses the call
        """
        return self._retrying(what, self._thrift1, fn)[1]

    def call_thrift2(self, what: str, fn: Callable[[Any], _T]) -> _T:
        """Run ``fn`` with a pooled Thrift2 client, retrying transient failures.

        :raises CapabilityError: when there is no Thrift2 gateway
        :raises RetriesExhaustedError: when a transient failure outlasts the retries
        :raises StoreError: when HBase refuses the call
        """
        return self._retrying(what, self._thrift2_targets(what), fn)[1]

    def open(self, what: str, fn: Callable[[Any], _T], thrift2: bool = False) -> tuple[Target, _T]:
        """:meth:`call` (or :meth:`call_thrift2`), also returning the gateway that ran it, for
        calls whose result only that gateway knows (a scanner id).

        :raises CapabilityError: for ``thrift2`` when there is no Thrift2 gateway
        """
        targets = self._thrift2_targets(what) if thrift2 else self._thrift1
        return self._retrying(what, targets, fn)

    def call_at(self, target: Target, what: str, fn: Callable[[Any], _T]) -> _T:
        """Run ``fn`` on ``target`` alone (a scanner's gateway), retrying transient failures.

        :raises ScannerLostError: when ``target`` is marked down while others are left (the
            scanner is gone with it: the scan must reopen elsewhere)
        :raises RetriesExhaustedError: when a transient failure outlasts the retries
        """
        return self._retrying(what, [target], fn, pinned=True)[1]

    def call_once(
        self, what: str, fn: Callable[[Any], object], target: Target | None = None
    ) -> bool:
        """Run ``fn`` once with a connection free within 5 s — on ``target``, or on a Thrift1
        gateway — for clean-up that the server does by itself anyway (closing a scanner); a
        failure is logged, not raised.

        :return: whether ``fn`` ran without error
        """
        target = target or self._pick(self._thrift1)
        try:
            with target.pool.connection(timeout=5) as conn:
                fn(conn)
        except Exception:  # clean-up only: the server expires what we fail to release
            log.debug("%s on %s failed", what, target.name, exc_info=True)
            return False
        return True

    def close(self) -> None:
        """Close every pooled connection; calls afterwards raise :class:`StoreError`."""
        if self._checker is not None:
            self._checker.close()
        for target in self.targets:
            target.pool.close()

    def _thrift2_targets(self, what: str) -> list[Target]:
        if self._thrift2 is None:
            raise CapabilityError(f"{what}: {self.thrift2_error}")
        return self._thrift2

    def _pick(self, targets: Sequence[Target]) -> Target:
        # Round-robin over the gateways that answer; when none does, over all of them, so the
        # retries find whichever comes back first.
        up = [t for t in targets if t.up] or targets
        turn = self._turns[1 if targets is self._thrift2 else 0]
        return up[next(turn) % len(up)]

    def _retrying(
        self, what: str, targets: Sequence[Target], fn: Callable[[Any], _T], pinned: bool = False
    ) -> tuple[Target, _T]:
        delay = 0.05
        started = time.monotonic()
        several = len(self.endpoints) > 1
        for n in range(self.retries + 1):
            target = self._pick(targets)
            try:
                with target.pool.connection(timeout=self.timeout_ms / 1000) as conn:
                    target.calls += 1
                    return target, fn(conn)
            except Exception as exc:
                kind = classify(exc)
                if kind == OTHER:
                    raise
                if kind == SCANNER_LOST:
                    raise ScannerLostError(f"{what} on {target.name}: {first_line(exc)}") from exc
                if kind == PERMANENT:
                    raise StoreError(f"{what} on {target.name}: {first_line(exc)}") from exc
                failed_over = several and _broken_connection(exc)
                if failed_over:
                    target.mark_down(first_line(exc))
                    if pinned:
                        raise ScannerLostError(
                            f"{what} on {target.name}: the gateway is down ({first_line(exc)})"
                        ) from exc
                if n == self.retries or time.monotonic() - started > self.retry_seconds:
                    raise RetriesExhaustedError(
                        f"{what} on {target.name}: still failing after {n + 1} attempts: "
                        f"{first_line(exc)}; is HBase up? {START_HINT}"
                    ) from exc
                log.info(
                    "%s on %s failed (%s); retry %d", what, target.name, first_line(exc), n + 1
                )
                if failed_over and any(t.up for t in targets):
                    continue  # another gateway answers: no reason to wait
                time.sleep(random.uniform(0, delay))  # full jitter
                delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")
