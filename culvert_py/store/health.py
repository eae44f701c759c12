"""Whether each Thrift gateway answers, kept current by a background prober.

A :class:`Target` is one gateway of one protocol (a Thrift1 or a Thrift2 ``host:port``) with
its connection pool. A caller whose call fails on a broken connection marks the target down,
so the next attempt goes elsewhere at once; the :class:`HealthChecker` thread probes every
target with a fresh connection and a cheap call — down ones every ``interval`` seconds, so a
gateway that answers again is used again within that, up ones every other round, so a dead
gateway nobody is calling is noticed within about ``2 * interval`` seconds too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from culvert_py.store.pool import ConnectionPool

log = logging.getLogger(__name__)

__all__ = ["HealthChecker", "Target"]


class Target:
    """One gateway: its pool, whether it answers, and how many calls it served.

    :param name: ``"host:port"``, for messages
    :param pool: its pooled connections
    :param probe: opens a fresh connection with the socket timeout (ms) it is given, makes
        one cheap call and closes it, raising when the gateway does not answer properly
    """

    def __init__(self, name: str, pool: ConnectionPool, probe: Callable[[int], object]) -> None:
        self.name = name
        self.pool = pool
        self._probe = probe
        #: ``time.monotonic()`` when it was marked down, or ``None`` while it is up.
        self.down_since: float | None = None
        #: Why it was last marked down.
        self.why_down = ""
        #: The exception of the last failed probe, for ``raise ... from``.
        self.last_error: BaseException | None = None
        #: Calls started on it (approximate under threads: for reports and tests).
        self.calls = 0

    @property
    def up(self) -> bool:
        """Whether it answered last time anyone asked."""
        return self.down_since is None

    def mark_down(self, why: str) -> None:
        """Stop choosing it until a probe answers; close its idle connections."""
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.why_down = why
            log.warning("gateway %s is down (%s)", self.name, why)
        self.pool.discard_idle()

    def mark_up(self) -> None:
        """Choose it again; idle connections made before it went down are dropped."""
        since = self.down_since
        if since is not None:
            # Closed first: a socket from before the outage would fail the first call again.
            self.pool.discard_idle()
            self.down_since = None
            log.warning(
                "gateway %s answers again after %.1f s", self.name, time.monotonic() - since
            )

    def check(self, timeout_ms: int) -> bool:
        """Probe it now and mark it up or down accordingly.

        :param timeout_ms: the probe's socket timeout
        :return: whether it answered
        """
        try:
            self._probe(timeout_ms)
        except Exception as exc:  # whatever the failure, the gateway did not answer properly
            self.last_error = exc
            text = str(exc).strip()
            self.mark_down(text.splitlines()[0][:200] if text else type(exc).__name__)
            return False
        self.mark_up()
        return True


class HealthChecker:
    """A daemon thread probing ``targets`` until :meth:`close`.

    :param targets: what to probe
    :param interval: seconds between rounds: down targets are probed every round, up ones
        every other round
    :param timeout_ms: each probe's socket timeout
    """

    def __init__(self, targets: Sequence[Target], interval: float, timeout_ms: int) -> None:
        self.targets = tuple(targets)
        self.interval = interval
        self.timeout_ms = timeout_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="culvert-gateway-health", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        round_ = 0
        while not self._stop.wait(self.interval):
            round_ += 1
            for target in self.targets:
                if self._stop.is_set():
                    return
                if not target.up or round_ % 2 == 0:
                    target.check(self.timeout_ms)

    def close(self) -> None:
        """Stop probing; waits for a probe under way (bounded by its socket timeout)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
