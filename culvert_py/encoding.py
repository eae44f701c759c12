"""Order-preserving encodings of typed column values into bytes.

An index row key is ``salt | enc(v1) | enc(v2) … | primary key``, and HBase sorts row keys as
unsigned bytes. So every encoding here has two properties:

* **order-preserving**: for two values ``a`` and ``b`` of one column type,
  ``enc(a) < enc(b)`` as bytes exactly when ``a < b`` as Python values (reversed for the
  descending form);
* **prefix-free** (hence self-delimiting): no encoding is a proper prefix of another, so a
  decoder finds where a value ends without a length field, and two concatenations
  ``enc(a1) + enc(a2) + pk`` compare like the tuples ``(a1, a2)`` whatever bytes follow.

The design follows HBase's ``OrderedBytes`` and the FoundationDB tuple layer: a one-byte
header, then a payload.

============  ======  =====  ==============================================================
type          header  desc.  payload (ascending)
============  ======  =====  ==============================================================
NULL          0x00    0x00   none
``bool``      0x10    0xEF   one byte: 0x00 False, 0x01 True
``int``       0x20    0xDF   8 bytes big-endian, ``value + 2**63`` (sign bit flipped)
``float``     0x30    0xCF   8 bytes: IEEE-754 bits; negative: all inverted, else sign set
``str``       0x40    0xBF   UTF-8, each 0x00 written 0x00 0xFF, terminated by 0x00 0x01
``bytes``     0x50    0xAF   as ``str``, on the raw bytes
``datetime``  0x60    0x9F   8 bytes: microseconds since 1970-01-01 UTC, as ``int``
============  ======  =====  ==============================================================

Decisions, each chosen so that byte order agrees with Python's ``<`` and ``==``:

* **NULL sorts first in both directions** (``NULLS FIRST``): it is the single byte 0x00, never
  inverted, and every non-null header is above it. ``IS NULL`` is then the same one-byte prefix
  scan on ascending and descending indexes.
* **Descending** is the ascending encoding (header included) with every byte inverted. Because
  the ascending form is prefix-free, two encodings differ at some byte, and inverting that byte
  reverses their order; inversion keeps the form prefix-free, so it stays self-delimiting (the
  string terminator becomes 0xFF 0xFE, the escape 0xFF 0x00). The inverted header also makes a
  value decoded with the wrong direction fail loudly instead of decoding to garbage.
* **str / bytes**: the 0x00 0x01 terminator sorts below the 0x00 0xFF escape and below every
  other byte, which gives ``"a" < "a\\x00" < "a\\x00\\x00" < "ab"``. A bare 0x00 terminator
  would make ``enc("a")`` a prefix of ``enc("a\\x00")`` and let the bytes after the value decide.
  UTF-8 byte order is code-point order, which is how Python compares strings. Lone surrogates
  cannot be UTF-8 and are rejected.
* **float**: ``-0.0`` is normalised to ``0.0`` (they are equal in Python, so they get one
  encoding). Python gives NaN no place in its order, so here is the convention: every NaN is
  canonicalised to the quiet NaN ``0x7FF8000000000000``, so all NaNs are equal, and it sorts
  after ``+inf``: ``-inf < negative < 0.0 < positive < +inf < NaN``. Decoding rejects the byte
  patterns of ``-0.0`` and of non-canonical NaNs, so decoding and re-encoding is the identity.
* **int** is signed 64-bit; a value outside ``[-2**63, 2**63 - 1]`` is rejected, never wrapped.
  ``bool`` is not accepted as an int (nor as a float), although Python makes it a subclass.
  A float column accepts any real number (ints included) and stores ``float(value)``.
* **datetime** must be timezone-aware; a naive datetime is **rejected**, because guessing its
  zone (local time? UTC?) silently misplaces rows in a range index. Aware values are compared
  as instants, like Python does, so ``12:00+02:00 == 10:00Z``. Precision is one microsecond,
  range ``datetime.min`` to ``datetime.max`` in UTC; decoding returns an aware UTC datetime.

Every failure raises :class:`~culvert_py.errors.EncodingError`: on encoding it names the column
(when given) and the offending value, on decoding it gives the offset of the bad value. The
checks and normalisations of values before they are encoded live in :mod:`culvert_py.values`
(:func:`check_value`, :data:`COLUMN_TYPES` are re-exported here).
"""

import math
import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from culvert_py.errors import EncodingError
from culvert_py.values import COLUMN_TYPES as COLUMN_TYPES
from culvert_py.values import check_type_name, short_repr
from culvert_py.values import check_value as check_value

_NULL = 0x00
_HEADERS: dict[str, int] = {
    "bool": 0x10,
    "int": 0x20,
    "float": 0x30,
    "str": 0x40,
    "bytes": 0x50,
    "datetime": 0x60,
}
# Payload width of the fixed-width types; str and bytes are terminated instead.
_WIDTHS: dict[str, int] = {"bool": 1, "int": 8, "float": 8, "datetime": 8}

_INVERT = bytes(range(255, -1, -1))  # translate table: byte b -> 0xFF - b
_SIGN64 = 1 << 63
_MASK64 = (1 << 64) - 1
_CANONICAL_NAN_BITS = 0x7FF8000000000000
_FLOAT = struct.Struct(">d")
_UINT64 = struct.Struct(">Q")

# The instants the datetime payload counts between; the same range as the value check's.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATETIME_MIN_US = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_DATETIME_MAX_US = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)


# --------------------------------------------------------------------------- payloads


def _datetime_micros(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


def _int_payload(value: int) -> bytes:
    return (value + _SIGN64).to_bytes(8, "big")


def _float_payload(value: float) -> bytes:
    # math.nan's bits are platform-defined; the encoding is not.
    bits = _CANONICAL_NAN_BITS if math.isnan(value) else _UINT64.unpack(_FLOAT.pack(value))[0]
    # Negative floats order backwards as raw bits, so invert them all; positives only need to
    # land above every negative.
    bits = bits ^ _MASK64 if bits & _SIGN64 else bits | _SIGN64
    return _UINT64.pack(bits)


def _escaped_payload(body: bytes) -> bytes:
    return body.replace(b"\x00", b"\x00\xff") + b"\x00\x01"


def _str_payload(value: str) -> bytes:
    return _escaped_payload(value.encode("utf-8"))


def _bool_payload(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


def _datetime_payload(value: datetime) -> bytes:
    return _int_payload(_datetime_micros(value))


# Ascending payload (no header) of a value already normalised by its check.
_PAYLOADS: dict[str, Callable[[Any], bytes]] = {
    "int": _int_payload,
    "float": _float_payload,
    "str": _str_payload,
    "bytes": _escaped_payload,
    "bool": _bool_payload,
    "datetime": _datetime_payload,
}


def _decode_int(payload: bytes) -> int:
    return int.from_bytes(payload, "big") - _SIGN64


def _decode_float(payload: bytes) -> float:
    stored = _UINT64.unpack(payload)[0]
    bits = stored ^ _SIGN64 if stored & _SIGN64 else stored ^ _MASK64
    value = _FLOAT.unpack(_UINT64.pack(bits))[0]
    if math.isnan(value) and bits != _CANONICAL_NAN_BITS:
        raise ValueError(f"non-canonical NaN 0x{bits:016x} (NaN is stored as 0x7ff8000000000000)")
    if bits == _SIGN64:
        raise ValueError("-0.0 is stored as 0.0")
    return value


def _decode_bool(payload: bytes) -> bool:
    if payload[0] > 1:
        raise ValueError(f"bool byte 0x{payload[0]:02x}, expected 0x00 or 0x01")
    return payload[0] == 1


def _decode_datetime(payload: bytes) -> datetime:
    micros = _decode_int(payload)
    if not _DATETIME_MIN_US <= micros <= _DATETIME_MAX_US:
        raise ValueError(f"{micros} microseconds since the epoch is outside datetime's range")
    return _EPOCH + timedelta(microseconds=micros)


_FIXED_DECODERS: dict[str, Callable[[bytes], object]] = {
    "int": _decode_int,
    "float": _decode_float,
    "bool": _decode_bool,
    "datetime": _decode_datetime,
}


def _unescape(data: bytes, start: int, descending: bool, type_name: str) -> tuple[bytes, int]:
    """Body of a terminated payload beginning at ``start``, and the offset after it."""
    # Descending values are inverted in place, so look for the inverted marker bytes and
    # invert the body once at the end rather than the (unknown-length) rest of the key.
    marker, escaped, end = (0xFF, 0x00, 0xFE) if descending else (0x00, 0xFF, 0x01)
    marker_byte = bytes((marker,))
    chunks = []
    pos = start
    while True:
        found = data.find(marker_byte, pos)
        if found < 0 or found + 1 >= len(data):
            raise EncodingError(
                f"truncated {type_name} at offset {start - 1}: no terminator "
                f"0x{marker:02x} 0x{end:02x} before the end of the data"
            )
        follower = data[found + 1]
        if follower == escaped:
            chunks.append(data[pos : found + 1])  # the marker itself stands for one 0x00 byte
            pos = found + 2
        elif follower == end:
            chunks.append(data[pos:found])
            body = b"".join(chunks)
            return (body.translate(_INVERT) if descending else body), found + 2
        else:
            raise EncodingError(
                f"malformed {type_name} at offset {start - 1}: byte 0x{marker:02x} at offset "
                f"{found} is followed by 0x{follower:02x}, expected 0x{escaped:02x} (escaped "
                f"NUL) or 0x{end:02x} (end)"
            )


def _as_bytes(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise EncodingError(f"cannot decode {type(data).__name__} {short_repr(data)}: expected bytes")


def _decode_at(data: bytes, type_name: str, offset: int, descending: bool) -> tuple[object, int]:
    if not 0 <= offset < len(data):
        raise EncodingError(
            f"truncated {type_name} at offset {offset}: no header byte (data is {len(data)} bytes)"
        )
    header = data[offset]
    if header == _NULL:
        return None, offset + 1
    expected = _HEADERS[type_name] ^ 0xFF if descending else _HEADERS[type_name]
    if header != expected:
        direction = "descending" if descending else "ascending"
        raise EncodingError(
            f"malformed {type_name} at offset {offset}: header 0x{header:02x}, expected "
            f"0x{expected:02x} ({direction} {type_name}) or 0x00 (NULL)"
        )
    start = offset + 1
    if type_name in ("str", "bytes"):
        body, end = _unescape(data, start, descending, type_name)
        if type_name == "bytes":
            return body, end
        try:
            return body.decode("utf-8"), end
        except UnicodeDecodeError as exc:
            raise EncodingError(
                f"malformed str at offset {offset}: invalid UTF-8 ({exc.reason})"
            ) from exc
    end = start + _WIDTHS[type_name]
    if end > len(data):
        raise EncodingError(
            f"truncated {type_name} at offset {offset}: needs {end - offset} bytes, "
            f"{len(data) - offset} left"
        )
    payload = data[start:end]
    if descending:
        payload = payload.translate(_INVERT)
    try:
        return _FIXED_DECODERS[type_name](payload), end
    except ValueError as exc:
        raise EncodingError(f"malformed {type_name} at offset {offset}: {exc}") from exc


def _sequence_of(option: object, count: int, what: str) -> list[Any]:
    if isinstance(option, str | bytes) or not isinstance(option, Sequence):
        raise EncodingError(f"{what}: expected a sequence of {count}, got {short_repr(option)}")
    if len(option) != count:
        raise EncodingError(f"{what}: expected {count} entries, got {len(option)}")
    return list(option)


def _directions(descending: bool | Sequence[bool] | None, count: int) -> list[bool]:
    if descending is None or isinstance(descending, bool):
        return [bool(descending)] * count
    return [bool(flag) for flag in _sequence_of(descending, count, "descending")]


def _column_names(columns: Sequence[str] | None, count: int) -> list[str | None]:
    if columns is None:
        return [None] * count
    return _sequence_of(columns, count, "columns")


# --------------------------------------------------------------------------- public API


def encode_value(
    value: object, type_name: str, *, descending: bool = False, column: str | None = None
) -> bytes:
    """Encode one value (or NULL) so that byte order equals value order.

    :param value: the value, or ``None`` for NULL, which sorts before every value
    :param type_name: one of :data:`COLUMN_TYPES`
    :param descending: encode so that byte order is the reverse of value order (NULL stays first)
    :param column: column name used in error messages
    :returns: header byte followed by the payload; self-delimiting
    :raises EncodingError: as :func:`check_value`
    """
    normalised = check_value(value, type_name, column)
    if normalised is None:
        return b"\x00"
    encoded = bytes((_HEADERS[type_name],)) + _PAYLOADS[type_name](normalised)
    return encoded.translate(_INVERT) if descending else encoded


def decode_value(
    data: bytes, type_name: str, offset: int = 0, *, descending: bool = False
) -> tuple[object, int]:
    """Decode one value written by :func:`encode_value`, starting at ``offset``.

    :param data: bytes holding the encoding, possibly followed by anything else
    :param type_name: the type it was encoded with, one of :data:`COLUMN_TYPES`
    :param offset: where the value's header byte is
    :param descending: whether it was encoded descending
    :returns: ``(value, offset just after the value)``; value is ``None`` for NULL
    :raises EncodingError: unknown type name, or truncated or malformed bytes (wrong header or
        direction, bad escape, invalid UTF-8, non-canonical float, out-of-range datetime); the
        message gives the offset
    """
    check_type_name(type_name)
    return _decode_at(_as_bytes(data), type_name, offset, descending)


def encode_tuple(
    values: Sequence[object],
    type_names: Sequence[str],
    *,
    descending: bool | Sequence[bool] | None = None,
    columns: Sequence[str] | None = None,
) -> bytes:
    """Encode several values one after the other, so that byte order is tuple order.

    Each element is encoded as by :func:`encode_value`; because each encoding is prefix-free,
    the concatenation compares like the tuple whatever bytes (e.g. a primary key) follow it.

    :param values: the values, ``None`` for NULL
    :param type_names: one type name per value
    :param descending: ``None``/``False`` for all ascending, ``True`` for all descending, or one
        bool per value
    :param columns: one column name per value, used in error messages
    :returns: the concatenated encodings
    :raises EncodingError: lengths disagree, or an element fails as in :func:`check_value`
    """
    if len(values) != len(type_names):
        raise EncodingError(
            f"expected {len(type_names)} values for types {list(type_names)}, got {len(values)}"
        )
    directions = _directions(descending, len(values))
    names = _column_names(columns, len(values))
    return b"".join(
        encode_value(value, type_name, descending=desc, column=name)
        for value, type_name, desc, name in zip(values, type_names, directions, names, strict=True)
    )


def decode_tuple(
    data: bytes,
    type_names: Sequence[str],
    offset: int = 0,
    *,
    descending: bool | Sequence[bool] | None = None,
) -> tuple[tuple[object, ...], int]:
    """Decode the values written by :func:`encode_tuple`, starting at ``offset``.

    :param data: bytes holding the encodings, possibly followed by anything else
    :param type_names: one type name per value
    :param offset: where the first value's header byte is
    :param descending: as given to :func:`encode_tuple`
    :returns: ``(values, offset just after the last value)``
    :raises EncodingError: as :func:`decode_value`, or a ``descending`` of the wrong length
    """
    for type_name in type_names:
        check_type_name(type_name)
    directions = _directions(descending, len(type_names))
    raw = _as_bytes(data)
    values = []
    for type_name, desc in zip(type_names, directions, strict=True):
        value, offset = _decode_at(raw, type_name, offset, desc)
        values.append(value)
    return tuple(values), offset


def prefix_successor(key: bytes) -> bytes | None:
    """Smallest byte string greater than every byte string that starts with ``key``.

    Used as the exclusive stop row of a prefix scan.

    :param key: the prefix
    :returns: ``key`` without its trailing 0xFF bytes and with its last byte incremented, or
        ``None`` when ``key`` is empty or all 0xFF (no stop row: scan to the end)
    """
    stripped = bytes(key).rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes((stripped[-1] + 1,))


def encode_str_prefix(prefix: str, *, descending: bool = False) -> bytes:
    """Bytes that begin the encoding of every str starting with ``prefix``, and of no other.

    Scanning from these bytes to their :func:`prefix_successor` finds ``LIKE 'prefix%'``.

    :param prefix: the string prefix
    :param descending: give the prefix of the descending encodings instead
    :returns: the str header and the escaped UTF-8 of ``prefix``, without the terminator
    :raises EncodingError: ``prefix`` is not a str or contains a lone surrogate
    """
    # check_value admits None (NULL), which no prefix can be.
    if not isinstance(prefix, str):
        raise EncodingError(f"expected str, got {type(prefix).__name__} {short_repr(prefix)}")
    body = check_value(prefix, "str").encode("utf-8").replace(b"\x00", b"\x00\xff")
    encoded = bytes((_HEADERS["str"],)) + body
    return encoded.translate(_INVERT) if descending else encoded


def sort_key(value: object) -> tuple[bool, Any]:
    """A key that orders values of one column type as index range scans order them.

    Ints and floats compare as numbers (``-0.0 == 0.0``); NaN is equal to NaN and greater than
    every other number, ``+inf`` included, as :func:`encode_value` orders them. Other types keep
    Python's order. Keys of values of different types are not meant to be compared.

    :param value: a non-NULL value
    :returns: a key for ``sorted`` and comparisons
    """
    if isinstance(value, float) and math.isnan(value):
        return (True, 0)
    return (False, value)
