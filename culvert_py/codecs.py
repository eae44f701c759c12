"""Application encodings of adopted tables' cells: Java's Bytes.toBytes, decimal text, epochs.

An adopted table keeps the bytes its own applications write; each column declares the codec
they use. :data:`CODECS` lists the codecs of each column type (the first is the default) and
:func:`codec_for` gives one. The binary codecs are Java's ``org.apache.hadoop.hbase.util.Bytes``
exactly: ``toBytes(short/int/long)`` big-endian two's complement, ``toBytes(float/double)``
IEEE-754 big-endian, ``toBytes(boolean)`` one byte ``0xFF``/``0x00`` (``toBoolean``: any byte
but ``0x00`` is true).

A codec refuses, rather than rounds, a value it cannot hold exactly (``2**40`` as int32,
``0.1`` as float32, microseconds as epoch_millis): the index holds the value as written, so
a lossy primary cell would read back as a row that no longer owns its entries.

Decoded values are normalised as :func:`culvert_py.values.check_value` normalises values
(``-0.0`` is ``0.0``, every NaN one NaN, datetimes in UTC), so a cell and the value written
to it compare equal.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from culvert_py.errors import EncodingError
from culvert_py.values import check_value, short_repr

#: The codecs of each column type; the first is the default.
CODECS: dict[str, tuple[str, ...]] = {
    "int": ("int64", "int32", "int16", "text"),
    "float": ("float64", "float32", "text"),
    "str": ("utf8",),
    "bytes": ("raw",),
    "bool": ("bool", "text"),
    "datetime": ("epoch_millis", "epoch_seconds", "iso8601"),
}

#: Codecs a single-column row key of an adopted table may use (composite keys are text).
ROW_KEY_CODECS: tuple[str, ...] = ("utf8", "raw", "int32", "int64")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT_TEXT = re.compile(rb"[+-]?[0-9]+")
_INT_TEXT_DIGITS = 19  # 2**63 has 19 digits: anything longer is out of range anyway
_JAVA_FLOAT_TEXT = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


class _Refusal(Exception):
    """Why a codec refuses a value or bytes; :class:`Codec` turns it into an EncodingError."""


@dataclass(frozen=True)
class Codec:
    """One application encoding of one column type.

    :ivar name: the codec's name, as the schema file spells it
    :ivar type_name: the column type it encodes
    """

    name: str
    type_name: str
    _encode: Callable[[object], bytes]
    _decode: Callable[[bytes], object]
    #: whether ``_decode`` returns values :func:`check_value` would still change (then it
    #: runs on every decoded value); the others normalise as they decode, which saves the
    #: check on every cell of a build or a fetched row
    _checked: bool = False

    def encode(self, value: object, column: str | None = None) -> bytes:
        """The bytes of ``value`` in this codec.

        :param value: a non-NULL value of the codec's column type
        :param column: column name used in error messages
        :return: the cell bytes
        :raises EncodingError: for a value of the wrong type, or one the codec cannot hold
            exactly (out of range, lost precision), naming the codec and the value
        """
        normal = check_value(value, self.type_name, column)
        try:
            return self._encode(normal)
        except _Refusal as exc:
            where = f"column {column!r}: " if column is not None else ""
            raise EncodingError(
                f"{where}{self.name} cannot hold {self.type_name} {short_repr(value)}: {exc}"
            ) from None

    def decode(self, data: bytes) -> object:
        """The value ``data`` holds in this codec.

        :param data: the cell bytes
        :return: the value, normalised like a written one
        :raises EncodingError: when the bytes are not this codec's, with a one-line reason
        """
        try:
            value = self._decode(data if type(data) is bytes else bytes(data))
            return check_value(value, self.type_name) if self._checked else value
        except (_Refusal, EncodingError) as exc:
            raise EncodingError(f"{self.name}: {short_repr(bytes(data))}: {exc}") from None


def codec_for(type_name: str, codec: str) -> Codec:
    """The codec named ``codec`` for columns of type ``type_name``.

    :raises EncodingError: for an unknown type, or a codec that is not one of its
        :data:`CODECS`, naming the known ones
    """
    known = CODECS.get(type_name)
    if known is None:
        raise EncodingError(f"unknown column type {type_name!r} (known: {', '.join(CODECS)})")
    if codec not in known:
        raise EncodingError(f"{codec!r} is not a codec of {type_name} (known: {', '.join(known)})")
    return _TABLE[type_name, codec]


# -- integers ---------------------------------------------------------------------------


def _fixed_int(fmt: str, bits: int) -> tuple[Callable, Callable]:
    packer = struct.Struct(fmt)
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def encode(value: int) -> bytes:
        if not low <= value <= high:
            raise _Refusal(f"out of range [-2**{bits - 1}, 2**{bits - 1} - 1]")
        return packer.pack(value)

    def decode(data: bytes) -> int:
        _length(data, packer.size)
        return packer.unpack(data)[0]

    return encode, decode


def _length(data: bytes, size: int) -> None:
    if len(data) != size:
        raise _Refusal(f"expected {size} byte(s), got {len(data)}")


def _ascii(data: bytes) -> str:
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise _Refusal("not ASCII text") from None


def _int_text_decode(data: bytes) -> int:
    if not _INT_TEXT.fullmatch(data):
        raise _Refusal("not a decimal integer (optional sign, then digits)")
    if len(data.lstrip(b"+-").lstrip(b"0")) > _INT_TEXT_DIGITS:
        raise _Refusal("out of int64 range")
    value = int(data)
    if not -(1 << 63) <= value < (1 << 63):
        raise _Refusal("out of int64 range")
    return value


# -- floats -----------------------------------------------------------------------------


def _fixed_float(fmt: str) -> tuple[Callable, Callable]:
    packer = struct.Struct(fmt)

    def encode(value: float) -> bytes:
        try:
            data = packer.pack(value)
        except OverflowError:
            raise _Refusal("out of range") from None
        back = packer.unpack(data)[0]
        if back != value and not math.isnan(value):
            raise _Refusal(f"not exactly representable (nearest {back!r}); round it first")
        return data

    def decode(data: bytes) -> float:
        _length(data, packer.size)
        return _normal_float(packer.unpack(data)[0])

    return encode, decode


def _normal_float(value: float) -> float:
    """``value`` as check_value leaves it: one NaN, ``0.0`` for ``-0.0``."""
    if value != value:
        return math.nan
    return value + 0.0


def _float_text_encode(value: float) -> bytes:
    text = repr(value)
    return _JAVA_FLOAT_TEXT.get(text, text).encode("ascii")


def _float_text_decode(data: bytes) -> float:
    text = _ascii(data)
    try:
        return _normal_float(float(text))
    except ValueError:
        raise _Refusal("not a decimal number") from None


# -- str, bytes, bool -------------------------------------------------------------------


def _utf8_decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Refusal(f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def _bool_decode(data: bytes) -> bool:
    _length(data, 1)
    return data != b"\x00"


def _bool_text_decode(data: bytes) -> bool:
    text = _ascii(data).lower()
    if text not in ("true", "false"):
        raise _Refusal("expected 'true' or 'false'")
    return text == "true"


# -- datetimes --------------------------------------------------------------------------


def _epoch(unit: timedelta, name: str) -> tuple[Callable, Callable]:
    packer = struct.Struct(">q")

    def encode(value: datetime) -> bytes:
        count, rest = divmod(value - _EPOCH, unit)
        if rest:
            raise _Refusal(f"it holds whole {name} only; truncate the value first")
        return packer.pack(count)

    def decode(data: bytes) -> datetime:
        _length(data, 8)
        count = packer.unpack(data)[0]
        try:
            return _EPOCH + count * unit
        except OverflowError:
            raise _Refusal(f"{count} {name} since the epoch is outside datetime's range") from None

    return encode, decode


def _iso_decode(data: bytes) -> datetime:
    text = _ascii(data)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _Refusal("not an ISO-8601 date-time") from None
    if value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    return value


_TABLE: dict[tuple[str, str], Codec] = {}


def _register(
    type_name: str, name: str, encode: Callable, decode: Callable, checked: bool = False
) -> None:
    _TABLE[type_name, name] = Codec(name, type_name, encode, decode, checked)


_register("int", "int64", *_fixed_int(">q", 64))
_register("int", "int32", *_fixed_int(">i", 32))
_register("int", "int16", *_fixed_int(">h", 16))
_register("int", "text", lambda v: str(v).encode("ascii"), _int_text_decode)
_register("float", "float64", *_fixed_float(">d"))
_register("float", "float32", *_fixed_float(">f"))
_register("float", "text", _float_text_encode, _float_text_decode)
_register("str", "utf8", lambda v: v.encode("utf-8"), _utf8_decode)
_register("bytes", "raw", bytes, bytes)
_register("bool", "bool", lambda v: b"\xff" if v else b"\x00", _bool_decode)
_register("bool", "text", lambda v: b"true" if v else b"false", _bool_text_decode)
_register("datetime", "epoch_millis", *_epoch(timedelta(milliseconds=1), "milliseconds"))
_register("datetime", "epoch_seconds", *_epoch(timedelta(seconds=1), "seconds"))
# fromisoformat keeps the text's offset (and can reach past datetime's range in UTC).
_register("datetime", "iso8601", lambda v: v.isoformat().encode("ascii"), _iso_decode, True)
