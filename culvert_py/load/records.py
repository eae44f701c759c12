"""The framing of a load file into raw records, each knowing its lines, its byte offset.

The file is read in binary, one physical line at a time, and each line is decoded on its own,
so a line that is not valid in the file's encoding is one bad record, not the end of the load.
A record is a line of JSON Lines, or a CSV record: one line or, when a quoted field holds line
breaks, several. A record longer than :data:`MAX_RECORD_BYTES` is bad, read past in bounded
memory. Records come parsed (CSV: the list of fields, quoted ones as :class:`Quoted`; JSON:
the value) but untyped; :mod:`culvert_py.load.fields` types them.
"""

from __future__ import annotations

import codecs
import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from culvert_py.errors import ArgumentError, LoadError

#: Largest record (a line, or a quoted CSV record over several lines): the memory one row
#: may take, and how far an unterminated quote can run before its line is rejected.
MAX_RECORD_BYTES = 32 << 20

#: Format names ``load_file`` accepts, and the format each stands for.
FORMATS = {
    "csv": "csv",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "json": "jsonl",
    "parquet": "parquet",
}
_SUFFIXES = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_RAW_LIMIT = 4096  # raw text kept for a record rejected for its size


class Reject(Exception):
    """A record or value that goes to the rejects file; the message is the reason."""


@dataclass
class Record:
    """One record of the input: its lines, where it ends, its raw text, its parse."""

    line: int  # first physical line, 1-based
    last_line: int  # last physical line
    end: int  # byte offset just after it
    raw: str  # the text without its final line break (undecodable bytes escaped)
    size: int  # bytes in the file
    value: Any = None  # CSV: list of fields; JSON: the parsed value
    reason: str | None = None  # set when the record itself is bad


class Quoted(str):
    """A CSV field that was in double quotes: never NULL, whatever its text."""

    __slots__ = ()


def format_of(source: Path, given: str | None) -> str:
    """The format of a load file: ``given`` (a :data:`FORMATS` name), else from its suffix.

    :param source: the file
    :param given: the format asked for, or ``None``
    :return: ``"csv"`` or ``"jsonl"``
    :raises ArgumentError: for a ``given`` that is not a format name
    :raises LoadError: when ``given`` is ``None`` and the suffix names no format
    """
    if given is not None:
        try:
            return FORMATS[given.lower()]
        except (KeyError, AttributeError) as exc:
            raise ArgumentError(
                f"unknown load format {given!r} (known: {', '.join(FORMATS)})"
            ) from exc
    fmt = _SUFFIXES.get(source.suffix.lower())
    if fmt is None:
        raise LoadError(
            f"cannot tell the format of {str(source)!r} from its suffix "
            f"(known: {', '.join(_SUFFIXES)}); give the format, csv, jsonl or parquet "
            "(--format on the command line, format= in the API)"
        )
    return fmt


def check_encoding(encoding: str) -> None:
    """Refuse a text encoding the framing cannot split in binary.

    :raises ArgumentError: for an unknown encoding, or one that is not ASCII-compatible
    """
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError) as exc:
        raise ArgumentError(f"unknown text encoding {encoding!r}") from exc
    # Lines are split on b"\n" and CSV structure found on b'"' and b"," before decoding, which
    # is only right when those characters are those single bytes (not so in UTF-16).
    if '\n",'.encode(encoding, "replace") != b'\n",':
        raise ArgumentError(
            f"encoding {encoding!r} is not ASCII-compatible; convert the file to UTF-8 first"
        )


def read_records(
    fh: IO[bytes], fmt: str, offset: int, line: int, encoding: str
) -> Iterator[Record]:
    """The records of ``fh`` from byte ``offset``, the start of physical line ``line``.

    Blank lines are skipped. A bad record (undecodable, malformed, too long) comes with its
    ``reason`` set; reading goes on after it.

    :param fh: the file, opened in binary and positioned at ``offset``
    :param fmt: ``"csv"`` or ``"jsonl"``
    :param offset: where reading starts (0, or a checkpoint's offset)
    :param line: the number of the line at ``offset`` (1-based)
    :param encoding: an encoding :func:`check_encoding` accepts
    """
    lines = _lines(fh, offset, line, encoding)
    if fmt == "csv":
        return _csv_records(lines, encoding)
    return _json_records(lines, encoding)


def refuse_json_array(records: Iterator[Record], path: Path) -> Iterator[Record]:
    """``records``, stopping early on a file that holds one JSON array: every "line" of it
    would be bad.

    :raises LoadError: when the first record opens a JSON array
    """
    first = next(records, None)
    if (
        first is not None
        and first.raw.lstrip().startswith("[")
        and (first.reason or isinstance(first.value, list))
    ):
        raise LoadError(
            f"{str(path)!r} line {first.line}: the file holds a JSON array; the "
            "loader reads JSON Lines, one object per line (convert with jq -c '.[]')"
        )
    if first is not None:
        yield first
    yield from records


# --------------------------------------------------------------------------- lines


@dataclass
class _Line:
    number: int
    end: int
    data: bytes  # without the line break
    size: int  # bytes in the file, line break included
    overlong: bool = False
    brk: bytes = b"\n"  # the line break itself (kept inside a quoted CSV field)


def _lines(fh: IO[bytes], offset: int, number: int, encoding: str) -> Iterator[_Line]:
    """The physical lines of ``fh`` from ``offset`` (the start of line ``number``)."""
    bom = codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    while True:
        data = fh.readline(MAX_RECORD_BYTES + 1)
        if not data:
            return
        size = len(data)
        overlong = False
        if size > MAX_RECORD_BYTES and not data.endswith(b"\n"):
            # Skip to the end of the line without holding it: one reject, bounded memory.
            overlong = True
            data = data[:_RAW_LIMIT]
            while True:
                more = fh.readline(1 << 20)
                size += len(more)
                if not more or more.endswith(b"\n"):
                    break
        offset += size
        brk = b"\r\n" if data.endswith(b"\r\n") else b"\n" if data.endswith(b"\n") else b""
        if brk:
            data = data[: -len(brk)]
        if number == 1 and bom and data.startswith(codecs.BOM_UTF8):
            data = data[len(codecs.BOM_UTF8) :]
        yield _Line(number, offset, data, size, overlong, brk)
        number += 1


def _decode(data: bytes, encoding: str) -> tuple[str, str | None]:
    """``(text, None)``, or ``(text with bad bytes escaped, reason)`` when ``data`` is invalid."""
    try:
        return data.decode(encoding), None
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start : exc.end].hex(" ")
        return data.decode(encoding, "backslashreplace"), (
            f"not valid {encoding}: byte(s) {bad} at byte {exc.start + 1} of the record"
        )


def _overlong(line: _Line, encoding: str) -> Record:
    raw = line.data.decode(encoding, "backslashreplace") + "…"
    reason = f"line longer than {MAX_RECORD_BYTES:,} bytes (MAX_RECORD_BYTES)"
    return Record(line.number, line.number, line.end, raw, line.size, reason=reason)


# --------------------------------------------------------------------------- JSON Lines


def _json_records(lines: Iterator[_Line], encoding: str) -> Iterator[Record]:
    for line in lines:
        if line.overlong:
            yield _overlong(line, encoding)
            continue
        text, bad = _decode(line.data, encoding)
        if not bad and not text.strip():
            continue
        record = Record(line.number, line.number, line.end, text, line.size, reason=bad)
        if not bad:
            try:
                record.value = json.loads(text)
            except ValueError as exc:
                record.reason = f"malformed JSON: {exc}"
        yield record


# --------------------------------------------------------------------------- CSV


def _csv_records(lines: Iterator[_Line], encoding: str) -> Iterator[Record]:
    """CSV records, each one line or, when a quoted field holds line breaks, several."""
    pushed_back: deque[_Line] = deque()

    def next_line() -> _Line | None:
        return pushed_back.popleft() if pushed_back else next(lines, None)

    while (first := next_line()) is not None:
        if first.overlong:
            yield _overlong(first, encoding)
            continue
        if b'"' not in first.data:
            # The common case: no quotes, so a plain split is the whole CSV grammar.
            text, bad = _decode(first.data, encoding)
            if bad or text.strip():
                fields = None if bad else text.split(",")
                yield Record(first.number, first.number, first.end, text, first.size, fields, bad)
            continue
        parts = [first]
        total = first.size
        in_quotes = _ends_in_quotes(first.data, False)
        while in_quotes:
            more = next_line()
            if more is None or more.overlong or total + more.size > MAX_RECORD_BYTES:
                # Reject the line that opened the quote and read on from the next one: a stray
                # quote costs one line, not the rest of the file.
                if more is not None:
                    parts.append(more)
                pushed_back.extendleft(reversed(parts[1:]))
                text, _ = _decode(first.data, encoding)
                limit = "the end of the file" if more is None else f"{MAX_RECORD_BYTES:,} bytes"
                reason = (
                    f"malformed CSV: unterminated quoted field (no closing quote before {limit})"
                )
                yield Record(first.number, first.number, first.end, text, first.size, None, reason)
                break
            parts.append(more)
            total += more.size
            in_quotes = _ends_in_quotes(more.data, True)
        else:
            data = b"".join(p.data + p.brk for p in parts[:-1]) + parts[-1].data
            text, bad = _decode(data, encoding)
            record = Record(first.number, parts[-1].number, parts[-1].end, text, total, None, bad)
            if not bad:
                try:
                    record.value = _split_quoted(text)
                except Reject as exc:
                    record.reason = str(exc)
            yield record


def _ends_in_quotes(data: bytes, in_quotes: bool) -> bool:
    """Whether a CSV line that starts inside (or outside) a quoted field ends inside one.

    Linear in the line, so a field quoted over many lines costs one pass over them. A quote
    opens a quoted field only as a field's first character; elsewhere it is data, as in
    Python's csv module.
    """
    position, field_start, size = 0, not in_quotes, len(data)
    while position < size:
        if in_quotes:
            close = data.find(b'"', position)
            if close < 0:
                return True
            if data[close + 1 : close + 2] == b'"':
                position = close + 2  # a doubled quote is data
                continue
            in_quotes, position = False, close + 1
        elif field_start and data[position] == 0x22:
            in_quotes, position = True, position + 1
        else:
            comma = data.find(b",", position)
            if comma < 0:
                return False
            position, field_start = comma + 1, True
            continue
        field_start = False
    return in_quotes


def _split_quoted(text: str) -> list[str]:
    """Split a CSV record holding quotes into its fields (RFC 4180: ``""`` is one quote);
    quoted fields come as :class:`Quoted`.

    :raises Reject: for data after a closing quote, or a quote left open
    """
    fields: list[str] = []
    position, size = 0, len(text)
    while True:
        if position < size and text[position] == '"':
            pieces = []
            position += 1
            while True:
                close = text.find('"', position)
                if close < 0:
                    raise Reject("malformed CSV: unterminated quoted field")
                pieces.append(text[position:close])
                if text[close + 1 : close + 2] == '"':
                    pieces.append('"')
                    position = close + 2
                    continue
                position = close + 1
                break
            if position < size and text[position] != ",":
                raise Reject(
                    f"malformed CSV: field {len(fields) + 1}: {text[position]!r} after a closing "
                    'quote (a quote inside a quoted field is written twice: "")'
                )
            fields.append(Quoted("".join(pieces)))
        else:
            comma = text.find(",", position)
            end = size if comma < 0 else comma
            fields.append(text[position:end])
            position = end
        if position >= size:
            return fields
        position += 1  # the comma
