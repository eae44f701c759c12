"""Fast codings of one column type, resolved once, for the hot paths.

Writers encode and readers decode millions of values of a few column types: these functions
look the type up once and give the common shapes a short path whose bytes (or values) are
exactly those of :func:`~culvert_py.encoding.encode_value` and
:func:`~culvert_py.encoding.decode_value`, which every other case goes through.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from culvert_py.encoding import (
    _HEADERS,
    _PAYLOADS,
    _SIGN64,
    decode_value,
    encode_value,
)
from culvert_py.errors import EncodingError
from culvert_py.values import check_type_name


def unchecked_value_encoder(type_name: str) -> Callable[[object], bytes]:
    """A fast ascending encoder, without checks, of non-NULL values already valid for ``type_name``.

    For hot paths whose values were checked once already (by :func:`check_value`, a write's
    encoding step or a codec's decoder): it skips the check but coerces what the check would
    normalise (``-0.0``, integral and bytes-like types), so its bytes equal
    :func:`encode_value`'s for every value that check accepts.

    :param type_name: one of :data:`COLUMN_TYPES`
    :returns: ``encode(value) -> bytes`` (header byte then payload)
    """
    check_type_name(type_name)
    head = bytes((_HEADERS[type_name],))
    payload = _PAYLOADS[type_name]
    coerce = _COERCE.get(type_name)
    if coerce is None:
        return lambda value: head + payload(value)
    return lambda value: head + payload(coerce(value))


# What check_value would normalise, as the encoding sees it (0.0 + -0.0 is 0.0).
_COERCE: dict[str, Callable[[Any], Any]] = {
    "int": int,
    "float": lambda value: float(value) + 0.0,
    "bytes": bytes,
}


@functools.lru_cache(maxsize=64)
def value_encoder(type_name: str, *, descending: bool = False) -> Callable[..., bytes]:
    """The function ``(value, column=None) -> bytes`` that encodes exactly as
    :func:`encode_value` does, with the type resolved once.

    Writers encode millions of values of a few column types: the common cases (ASCII str,
    64-bit int) skip the generic checks, which are identical for them, and everything else
    goes through :func:`encode_value` itself, so errors and edge cases stay one code path.

    :param type_name: one of :data:`COLUMN_TYPES`
    :param descending: encode for descending order
    :raises EncodingError: for an unknown type name (the encoder raises as
        :func:`encode_value`)
    """
    check_type_name(type_name)
    header = bytes((_HEADERS[type_name],))

    def generic(value: object, column: str | None = None) -> bytes:
        return encode_value(value, type_name, descending=descending, column=column)

    if descending or type_name not in ("str", "int"):
        return generic
    if type_name == "str":

        def encode_str(value: object, column: str | None = None) -> bytes:
            if type(value) is str and value.isascii():  # ASCII always encodes to UTF-8
                return header + value.encode().replace(b"\x00", b"\x00\xff") + b"\x00\x01"
            return generic(value, column)

        return encode_str

    def encode_int(value: object, column: str | None = None) -> bytes:
        if type(value) is int and -_SIGN64 <= value < _SIGN64:  # bool is not type int
            return header + (value + _SIGN64).to_bytes(8, "big")
        return generic(value, column)

    return encode_int


def cell_decoder(type_name: str) -> Callable[[bytes], object]:
    """A fast decoder of one whole ascending, non-NULL value (a primary-table cell).

    Rows are decoded cell by cell on every query, so the common shapes (a fixed-width
    number, a string without NUL bytes) take a short path; anything else goes through
    :func:`decode_value`, which validates fully.

    :param type_name: one of :data:`COLUMN_TYPES`
    :returns: ``decode(data) -> value``
    :raises EncodingError: (from the decoder) for malformed bytes
    """
    check_type_name(type_name)
    header = _HEADERS[type_name]

    def slow(data: bytes) -> object:
        value, end = decode_value(data, type_name)
        if end != len(data):
            raise EncodingError(f"malformed {type_name}: {len(data) - end} bytes after the value")
        return value

    if type_name in ("str", "bytes"):
        text = type_name == "str"

        def terminated(data: bytes) -> object:
            if data[:1] == bytes((header,)) and data[-2:] == b"\x00\x01":
                body = data[1:-2]
                if b"\x00" not in body:
                    if not text:
                        return body
                    try:
                        return body.decode("utf-8")
                    except UnicodeDecodeError:
                        pass
            return slow(data)

        return terminated
    if type_name == "int":

        def fixed_int(data: bytes) -> object:
            if len(data) == 9 and data[0] == header:
                return int.from_bytes(data[1:], "big") - _SIGN64
            return slow(data)

        return fixed_int
    return slow
