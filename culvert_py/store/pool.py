"""A bounded pool of reusable connections to one Thrift gateway.

happybase has a pool of its own, but it cannot be closed (its connections sit in a private
queue) and it knows one gateway only. This one lends at most ``size`` connections at a time,
reuses idle ones newest first, throws away a connection whose call failed in a way that may
have left its socket out of step, and closes everything on :meth:`ConnectionPool.close`.
Spreading calls over several gateways is :mod:`culvert_py.store.gateway`'s, one pool per
gateway.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
from collections.abc import Callable, Iterator
from typing import Generic, Protocol, TypeVar

from culvert_py.errors import ArgumentError, StoreError, TransientStoreError

log = logging.getLogger(__name__)


class Closable(Protocol):
    """What the pool needs of a connection: a way to close it."""

    def close(self) -> None: ...


_C = TypeVar("_C", bound=Closable)


class PoolTimeoutError(TransientStoreError):
    """Every connection of a pool stayed lent out for the whole wait."""


class ConnectionPool(Generic[_C]):
    """At most ``size`` connections made by ``connect``, each lent to one caller at a time.

    Connections are made lazily, when no idle one is left, and kept for reuse. Thread-safe,
    and safe to use from a finaliser: the garbage collector closes a dropped scan (borrowing a
    connection) in the middle of whatever the thread was doing, perhaps this pool's own code,
    so the pool takes no Python-level lock — only the GIL-atomic ``deque.append``/``pop`` and
    :class:`queue.SimpleQueue`, whose C ``put`` is reentrant.

    :param connect: makes a new open connection; its exceptions reach the borrower
    :param size: the most connections open at once (one per concurrent caller)
    :param name: what the connections reach, for messages (``"host:port"``)
    :param reusable_after: says whether a connection whose call raised this exception is still
        in step with its server (a declared Thrift exception: yes; a timeout: no). By default
        a connection is closed after any exception.
    :param check_out: called on each connection as it is lent, e.g. happybase's
        ``Connection.open``, which reconnects a socket closed behind the pool's back and is a
        no-op on an open one; if it raises, the connection is closed and the borrow fails
    :raises ArgumentError: for a ``size`` below 1
    """

    def __init__(
        self,
        connect: Callable[[], _C],
        size: int,
        name: str,
        reusable_after: Callable[[BaseException], bool] = lambda exc: False,
        check_out: Callable[[_C], object] | None = None,
    ) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ArgumentError(f"pool size must be an int >= 1, got {size!r}")
        self.size = size
        self.name = name
        self._connect = connect
        self._reusable_after = reusable_after
        self._check_out = check_out
        # LIFO: the most recently used socket is the one least likely to have been dropped by
        # the server or a firewall for idleness.
        self._idle: collections.deque[_C] = collections.deque()
        # One token per connection that may be open; a borrower holds one.
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(size):
            self._tokens.put(None)
        self._closed = False

    @contextlib.contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[_C]:
        """Borrow a connection for the ``with`` block, then give it back (or close it).

        :param timeout: seconds to wait for a free connection; ``None`` waits for ever
        :raises PoolTimeoutError: when none became free within ``timeout``
        :raises StoreError: when the pool is closed
        """
        if not self._take_token(timeout):
            raise PoolTimeoutError(
                f"{self.name}: all {self.size} pooled connections stayed busy for {timeout:g} s"
            )
        try:
            conn = self._take()
            reusable = False
            try:
                if self._check_out is not None:
                    self._check_out(conn)
                yield conn
                reusable = True
            except Exception as exc:
                reusable = self._reusable_after(exc)
                raise
            finally:
                # An interrupted call (KeyboardInterrupt, GeneratorExit) leaves reusable False:
                # its reply may still be on the way, and would answer the next caller's request.
                if reusable:
                    self._give_back(conn)
                else:
                    _close_quietly(conn)
        finally:
            self._tokens.put(None)

    def close(self) -> None:
        """Close every idle connection; lent ones are closed when they come back."""
        self._closed = True
        self._close_idle()

    def discard_idle(self) -> None:
        """Close every idle connection, e.g. when their gateway died: sockets to a dead
        server look open until used, and would fail the first calls after it comes back."""
        self._close_idle()

    def _take_token(self, timeout: float | None) -> bool:
        try:
            self._tokens.get(timeout=timeout)
        except queue.Empty:
            return False
        return True

    def _take(self) -> _C:
        if self._closed:
            raise StoreError(f"{self.name}: the store is closed")
        try:
            return self._idle.pop()
        except IndexError:
            return self._connect()

    def _give_back(self, conn: _C) -> None:
        self._idle.append(conn)
        # Checked after the append: a close() that ran in between has drained the deque
        # before the append, so the connection is closed here instead of lingering.
        if self._closed:
            self._close_idle()

    def _close_idle(self) -> None:
        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                return
            _close_quietly(conn)


def _close_quietly(conn: Closable) -> None:
    try:
        conn.close()
    except Exception:  # a socket that fails to close is gone either way
        log.debug("closing a pooled connection failed", exc_info=True)
