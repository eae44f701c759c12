"""Batches of conditional row writes sent to culvert's checkAndMutate sidecar in one call.

The sidecar (``hbase/sidecar/CheckAndMutateSidecar.java``, started by ``hbase-local``) is a
small Java process holding one HBase client connection. It takes a whole batch of
``(row, check cell, expected bytes or absent, puts, deletes)`` items and applies them with
the Java client's ``Table.checkAndMutate(List<CheckAndMutate>)``: one multi-action RPC per
region server instead of one Thrift2 ``checkAndMutate`` per row. The protocol (length-
prefixed, big-endian) is documented at the top of the Java source; :func:`encode_request`
writes it with ``struct.pack`` and one ``b"".join`` (no per-cell objects: client CPU per
row is part of the point).

It is an optimisation, never a dependency. :class:`Sidecars` answers ``None`` whenever a
batch did not certainly get a reply — none configured up, a refused or broken connection,
the sidecar dying mid-batch, HBase too slow for it — and the store then makes the same
writes through Thrift2, one call per row. Items the sidecar had applied before it failed
report "condition failed" on that second path (their check cell now holds the new value),
which the write protocol recognises by its own version cell (:mod:`culvert_py.write`).
A broken sidecar is marked down and a background prober brings it back once it answers.
"""

from __future__ import annotations

import itertools
import logging
import socket
import struct
from collections.abc import Sequence

from culvert_py.errors import ArgumentError, StoreError
from culvert_py.store.base import RowMutation, check_conditional, check_put, normalise_column
from culvert_py.store.health import HealthChecker, Target
from culvert_py.store.pool import ConnectionPool, PoolTimeoutError

__all__ = ["Sidecars", "decode_reply", "encode_request"]

log = logging.getLogger(__name__)

_VERSION = 1
_OP_PING, _OP_CHECK_AND_MUTATE = 0, 1
_OK, _REFUSED, _UNAVAILABLE = 0, 1, 2
_PING = struct.pack(">IBB", 2, _VERSION, _OP_PING)
_ABSENT = struct.pack(">i", -1)
#: The sidecar's own limits: a request that would exceed them goes through Thrift2 instead.
MAX_REQUEST = 16 << 20
MAX_ITEMS = 100_000

Item = tuple[bytes, bytes, "bytes | None", RowMutation]


def encode_request(table: str, timestamp: int, items: Sequence[Item]) -> bytes | None:
    """One CHECK_AND_MUTATE request frame for ``items``, every argument checked first.

    :param table: the table name
    :param timestamp: the timestamp of every put and delete (checked by the caller)
    :param items: ``(row, column, expected or None, mutation)`` as ``check_and_mutate`` takes
    :return: the whole frame, length prefix included; ``None`` when the items do not fit
        the protocol's limits (a column over 64 KiB, 65536 cells in a row, a frame over
        :data:`MAX_REQUEST`): Thrift2 takes those, so the caller sends them that way
    :raises ArgumentError: for any malformed item, as ``check_and_mutate`` would raise it
    """
    pack = struct.pack
    name = table.encode()
    parts = [b"", pack(">BBH", _VERSION, _OP_CHECK_AND_MUTATE, len(name)), name]
    parts.append(pack(">qI", timestamp, len(items)))
    append = parts.append
    try:
        for row, column, expected, mutation in items:
            check_conditional(row, expected, mutation)
            if type(row) is not bytes or not row:
                raise ArgumentError(
                    f"table {table!r}: row key must be non-empty bytes, got {row!r}"
                )
            if type(column) is not bytes or not column or column[0] == 58:
                column = normalise_column(column)
            append(pack(">IH", len(row), len(column)))
            append(row)
            append(column)
            if expected is None:
                append(_ABSENT)
            elif type(expected) is bytes:
                append(pack(">i", len(expected)))
                append(expected)
            else:
                raise ArgumentError(
                    f"check_and_mutate: expected must be bytes or None, got {expected!r}"
                )
            puts = mutation.puts
            append(pack(">H", len(puts)))
            for col, value in puts.items():
                plain = type(col) is type(value) is bytes and b":" in col[1:-1]
                if not (plain and col[0] != 58 != col[-1]):  # 58 is ":"
                    col = check_put(col, value, table)  # not certainly well-formed
                append(pack(">HI", len(col), len(value)))
                append(col)
                append(value)
            deletes = mutation.deletes
            append(pack(">H", len(deletes)))
            for col in deletes:
                col = normalise_column(col)
                append(pack(">H", len(col)))
                append(col)
    except struct.error:  # a column over 64 KiB, more than 65535 cells in one row
        return None
    size = sum(map(len, parts))
    if size > MAX_REQUEST or len(items) > MAX_ITEMS:
        return None
    parts[0] = pack(">I", size)
    return b"".join(parts)


def decode_reply(body: bytes, count: int) -> list[bool] | str:
    """The per-item outcomes of an OK reply body, or the message of an UNAVAILABLE one.

    :raises StoreError: for a REFUSED reply (the message names what was wrong), or a reply
        that does not match its request
    """
    status = body[0] if body else -1
    if status == _OK and len(body) >= 5:
        (n,) = struct.unpack_from(">I", body, 1)
        bits = body[5:]
        if n == count and len(bits) == (n + 7) // 8:
            return [bool(bits[i >> 3] >> (i & 7) & 1) for i in range(n)]
    text = body[1:].decode(errors="replace")
    if status == _UNAVAILABLE:
        return text
    if status == _REFUSED:
        raise StoreError(text)
    raise StoreError(f"sidecar: a reply of {len(body)} bytes does not answer {count} items")


class _Connection:
    """One TCP connection to a sidecar: a request out, its reply back."""

    def __init__(self, host: str, port: int, timeout_ms: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout_ms / 1000)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")

    def request(self, frame: bytes) -> bytes:
        self.sock.sendall(frame)
        head = self.file.read(4)
        if len(head) < 4:
            raise ConnectionResetError("the sidecar closed the connection")
        (length,) = struct.unpack(">I", head)
        body = self.file.read(length)
        if len(body) < length:
            raise ConnectionResetError("the sidecar closed the connection mid-reply")
        return body

    def close(self) -> None:
        self.file.close()
        self.sock.close()


class Sidecars:
    """Pooled connections to one or more sidecars, chosen round-robin among those up.

    :param addresses: ``(host, port)`` of each sidecar
    :param pool_size: connections per sidecar (one per concurrent caller)
    :param timeout_ms: socket timeout of a call (the sidecar bounds HBase's side to 60 s)
    :param check_interval: seconds between health probes of the sidecars
    """

    def __init__(
        self,
        addresses: Sequence[tuple[str, int]],
        pool_size: int,
        timeout_ms: int,
        check_interval: float = 0.5,
    ) -> None:
        self.timeout_ms = timeout_ms
        self.targets = tuple(self._target(h, p, pool_size) for h, p in addresses)
        self._turn = itertools.count()
        for target in self.targets:
            target.check(min(timeout_ms, 2000))
        self._checker = HealthChecker(self.targets, check_interval, min(timeout_ms, 2000))

    def _target(self, host: str, port: int, pool_size: int) -> Target:
        name = f"{host}:{port}"

        def probe(timeout_ms: int) -> None:
            conn = _Connection(host, port, timeout_ms)
            try:
                reply = decode_reply(conn.request(_PING), 0)
            finally:
                conn.close()
            if isinstance(reply, str):
                raise StoreError(reply)

        pool: ConnectionPool[_Connection] = ConnectionPool(
            lambda: _Connection(host, port, self.timeout_ms),
            pool_size,
            f"sidecar {name}",
            lambda exc: isinstance(exc, StoreError),  # a REFUSED reply was read whole
        )
        return Target(name, pool, probe)

    @property
    def up(self) -> bool:
        """Whether any sidecar answered last time."""
        return any(t.up for t in self.targets)

    def call(self, frame: bytes, count: int, what: str) -> list[bool] | None:
        """Send one request to a sidecar that is up.

        :param frame: from :func:`encode_request`
        :param count: its number of items
        :param what: the operation, for messages
        :return: whether each item was applied; ``None`` when no sidecar gave an answer
            (then some items may have been applied: the caller writes the batch another way)
        :raises StoreError: when the sidecar refused the request (an unknown table or
            family): the same request would be refused on any path
        """
        up = [t for t in self.targets if t.up]
        if not up:
            return None
        target = up[next(self._turn) % len(up)]
        try:
            with target.pool.connection(timeout=self.timeout_ms / 1000) as conn:
                target.calls += 1
                reply = decode_reply(conn.request(frame), count)
        except (OSError, PoolTimeoutError) as exc:
            target.mark_down(str(exc) or type(exc).__name__)
            log.warning("%s: sidecar %s failed (%s); sent through Thrift2", what, target.name, exc)
            return None
        except StoreError as exc:
            raise StoreError(f"{what} on sidecar {target.name}: {exc}") from exc
        if isinstance(reply, str):
            log.warning("%s: sidecar %s: %s; sent through Thrift2", what, target.name, reply)
            return None
        return reply

    def report(self) -> list[tuple[str, bool, int]]:
        """``(host:port, answers, calls made)`` of every sidecar."""
        return [(t.name, t.up, t.calls) for t in self.targets]

    def close(self) -> None:
        """Stop probing and close every pooled connection."""
        self._checker.close()
        for target in self.targets:
            target.pool.close()
