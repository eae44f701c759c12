"""The Thrift gateway pairs a store URL names.

A store URL lists one or more gateways, comma-separated, each ``HOST:PORT`` (its Thrift1
port; its Thrift2 gateway is on the same host at the URL's ``thrift2_port``) or
``HOST:PORT:THRIFT2_PORT`` (its own Thrift2 port, for several gateways on one host)::

    hbase://h1:9090,h2:9090?thrift2_port=9091
    hbase://127.0.0.1:9090:9091,127.0.0.1:9092:9093

A Thrift2 port of ``0`` means "no Thrift2 gateway here". IPv6 hosts go in brackets
(``[::1]:9090``). The URL option ``sidecar=HOST:PORT[,HOST:PORT…]`` names checkAndMutate
sidecars (:mod:`culvert_py.store.sidecar`). :func:`format_gateways` writes the shortest
form that parses back to the same gateways.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from culvert_py.errors import ArgumentError, StoreError

__all__ = [
    "Endpoint",
    "check_gateways",
    "format_gateways",
    "parse_gateways",
    "parse_sidecars",
    "with_sidecars",
]

#: The gateway forms, for messages.
FORMS = "hbase://HOST:PORT[,HOST:PORT…] or hbase://HOST:PORT:THRIFT2_PORT[,…]"


class Endpoint(NamedTuple):
    """One gateway pair: a Thrift1 gateway and, optionally, a Thrift2 gateway on its host."""

    host: str
    port: int
    thrift2_port: int | None


def parse_gateways(netloc: str, thrift2_port: int | None, url: str) -> list[Endpoint]:
    """The gateways of a URL's network location.

    :param netloc: the part between ``hbase://`` and the path or query
    :param thrift2_port: the Thrift2 port of gateways that name none (``None``: no Thrift2)
    :param url: the whole URL, for messages
    :return: the gateways in URL order
    :raises StoreError: for an empty item, a missing or malformed port, or a gateway listed
        twice (naming the item and the accepted forms)
    """
    found: list[Endpoint] = []
    for item in netloc.split(","):
        endpoint = _parse_one(item, thrift2_port, url)
        if any(e[:2] == endpoint[:2] for e in found):
            raise StoreError(f"gateway {item!r} is listed twice in store URL {url!r}")
        found.append(endpoint)
    return found


def _parse_one(item: str, thrift2_port: int | None, url: str) -> Endpoint:
    where = f"gateway {item!r} in store URL {url!r}: need {FORMS}"
    if item.startswith("["):
        host, bracket, rest = item[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise StoreError(f"malformed {where}")
        ports = rest[1:].split(":") if rest else []
    else:
        host, *ports = item.split(":")
    if not host or len(ports) not in (1, 2):
        raise StoreError(f"malformed {where}")
    numbers = []
    for text in ports:
        if not text.isascii() or not text.isdigit() or not 0 <= int(text) <= 65535:
            raise StoreError(f"malformed port {text!r} of {where}")
        numbers.append(int(text))
    if numbers[0] == 0:
        raise StoreError(f"malformed port 0 of {where}")
    second = numbers[1] if len(numbers) == 2 else thrift2_port
    return Endpoint(host, numbers[0], second or None)


def format_gateways(endpoints: Sequence[Endpoint]) -> str:
    """The ``hbase://`` URL of ``endpoints``: ``hbase://h1:p1,h2:p2?thrift2_port=N`` when
    they share one Thrift2 port (``0``: none), each gateway's own ``HOST:PORT:THRIFT2_PORT``
    otherwise.

    :raises StoreError: for an empty list
    """
    if not endpoints:
        raise StoreError("a store needs at least one gateway")
    shared = {e.thrift2_port for e in endpoints}
    if len(shared) == 1:
        netloc = ",".join(f"{_host(e.host)}:{e.port}" for e in endpoints)
        return f"hbase://{netloc}?thrift2_port={shared.pop() or 0}"
    netloc = ",".join(f"{_host(e.host)}:{e.port}:{e.thrift2_port or 0}" for e in endpoints)
    return f"hbase://{netloc}"


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def parse_sidecars(text: str, url: str) -> list[tuple[str, int]]:
    """The ``(host, port)`` of each sidecar of a URL's ``sidecar=`` option.

    :raises StoreError: for an empty item, a malformed port or a sidecar listed twice
    """
    found: list[tuple[str, int]] = []
    for item in text.split(","):
        host, _, port = item.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
            raise StoreError(f"sidecar {item!r} in store URL {url!r}: need sidecar=HOST:PORT[,…]")
        if (host, int(port)) in found:
            raise StoreError(f"sidecar {item!r} is listed twice in store URL {url!r}")
        found.append((host, int(port)))
    return found


def with_sidecars(url: str, sidecars: Sequence[tuple[str, int]]) -> str:
    """``url`` (from :func:`format_gateways`) with its ``sidecar=`` option, if any."""
    if not sidecars:
        return url
    option = "sidecar=" + ",".join(f"{_host(h)}:{p}" for h, p in sidecars)
    return url + ("&" if "?" in url else "?") + option


def check_gateways(gateways: Sequence[tuple[str, int, int | None]]) -> list[Endpoint]:
    """The gateway pairs an :class:`~culvert_py.store.hbase.HBaseStore` is given in code,
    checked (a store URL's are parsed by :func:`parse_gateways`).

    :raises ArgumentError: for an item that is not ``(host, port, thrift2_port or None)``
    """
    found = []
    for item in gateways:
        try:
            host, port, second = item
        except (TypeError, ValueError):
            raise ArgumentError(
                f"gateway {item!r}: expected (host, port, thrift2_port or None)"
            ) from None
        second = second or None  # 0 means "no Thrift2 gateway", as in a store URL
        ports_ok = all(
            isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536
            for p in (port, *([second] if second is not None else []))
        )
        if not isinstance(host, str) or not host or not ports_ok:
            raise ArgumentError(f"gateway {item!r}: expected (host, port, thrift2_port or None)")
        found.append(Endpoint(host, port, second))
    if not found:
        raise ArgumentError("gateways: expected at least one (host, port, thrift2_port) pair")
    return found
