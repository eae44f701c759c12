"""Batch loading of CSV and JSON Lines files into an indexed table.

    with culvert_py.connect(url) as db:
        report = load_file(db.table("people"), "people.csv", null_token="NA")
        print(report.summary())

**Streaming.** The file is read in binary, one physical line at a time, and each line is
decoded on its own, so a line that is not valid in the file's encoding is one reject, not the
end of the load. Rows go to :meth:`~culvert_py.client.IndexedTable.put_many` (the consistent
write protocol) in batches of ``batch_size``; memory holds a few batches, whatever the file
size. Several batches are in flight at once (``client.pipeline_depth``), each its own
``put_many`` call, and a batch sharing a key with one in flight waits for it, so a key given
twice ends with its later line, as in a serial load.

**Formats** (from the suffix: ``.csv``; ``.jsonl``, ``.ndjson`` and ``.json`` are JSON Lines):

* CSV (RFC 4180): comma-separated, the first record is the header naming the columns; a field
  in double quotes may hold commas, newlines and doubled quotes ``""``. A header naming a column
  the table does not have, or missing a row-key column, makes every row bad, so it raises
  :class:`~culvert_py.errors.LoadError` before anything is written. Columns the header leaves
  out are not touched (an existing row keeps their values).
* JSON Lines: one JSON object per line; a key the table does not have rejects the row; a key
  left out is not touched.

**Values** from CSV text, by column type (surrounding whitespace is ignored except for str):

=========  ==============================================================================
int        decimal digits with an optional sign (``-12``); ``1.5``, ``1e3``, ``1_000`` rejected
float      what ``float()`` reads: ``1.5``, ``-2e-3``, ``inf``, ``-inf``, ``nan``, ``-0``
str        the field as is
bytes      **hex**, optionally prefixed ``\\x`` (PostgreSQL's bytea output) or ``0x``: ``0xdead``;
           ``0x`` alone is the empty byte string
bool       ``true``/``false``, ``1``/``0``, ``yes``/``no``, any case
datetime   ISO-8601 with a UTC offset: ``2024-05-01T10:00:00Z``, ``…+02:00``. A datetime with
           no offset (or a bare date) is **rejected**: guessing its zone would misplace rows
           in a range index, and the encoding refuses naive datetimes for the same reason
=========  ==============================================================================

NULL: an empty CSV field, or a field equal to ``null_token`` (e.g. ``NA``); so CSV cannot
express the empty string (JSON Lines can). In JSON Lines ``null`` is NULL and values keep their
JSON types, checked by :func:`~culvert_py.encoding.check_value`: an int column takes JSON
integers only (``3.0`` is rejected, not truncated), a float column takes any number (and
``NaN``/``Infinity``), a bool column takes ``true``/``false`` only; datetime and bytes columns
take strings in the CSV forms above. ``null_token`` applies to CSV only.

**Rejects.** Every bad row is one JSON object per line in the rejects file (default
``<file>.rejects.jsonl``): ``{"line": 1-based line of the input (the CSV header is line 1),
"raw": the line's text (undecodable bytes shown backslash-escaped), "reason": what and where}``.
Kinds: wrong type, unknown column, missing or NULL row-key column, bytes invalid in the
encoding, a cell whose encoding exceeds :data:`MAX_CELL_BYTES` or a row key (primary, or of an
index entry) beyond :data:`MAX_KEY_BYTES`, a CSV record with the wrong number of fields or a
bad quote, malformed JSON or a JSON value that is not an object, a record longer than
:data:`MAX_RECORD_BYTES`. An unterminated quote rejects its first line only; parsing resumes on
the next line. Blank lines are skipped. The rejects file is truncated when a fresh load starts
and created only when there is a reject.

**Resume.** After a batch is written, and every batch before it, the loader saves a checkpoint
in the meta table (:meth:`~culvert_py.meta.Meta.save_checkpoint`, named after the table and
the file's absolute path): the file's size and mtime, the last line and byte offset written,
the counts so far and the size of the rejects file. ``resume=True`` checks that the file is
unchanged (:class:`~culvert_py.errors.LoadError` otherwise), truncates the rejects file back
to the checkpoint (so rejects of a batch that was read but not checkpointed are not listed
twice) and continues at the saved offset. Batches that were in flight when the load died are
written again: a put of the same values is idempotent, so the final table is the one a clean
load gives. Without ``resume`` a load starts from the top and drops any old checkpoint; a
complete load clears its checkpoint. ``bulk=True`` (no read of the current rows) is only
right for keys that are in neither the table nor twice in the file; resuming a bulk load is
fine, as it rewrites the same values.
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from culvert_py.encoding import check_value, encode_value
from culvert_py.errors import CulvertError, EncodingError, LoadError
from culvert_py.keys import IndexKeys, primary_key
from culvert_py.schema import TableDef

if TYPE_CHECKING:
    from culvert_py.client import IndexedTable

log = logging.getLogger(__name__)

#: Largest encoded cell accepted. HBase's own limit (``hbase.client.keyvalue.maxsize``, 10 MiB
#: by default) is higher, but cells this big already make region flushes, compactions and
#: scanner batches slow, so the loader rejects them rather than storing them.
MAX_CELL_BYTES = 1 << 20
#: Largest row key HBase accepts (a Java ``short`` length), for primary and index-entry keys.
MAX_KEY_BYTES = 32767
#: Largest record (a line, or a quoted CSV record over several lines): the memory one row
#: may take, and how far an unterminated quote can run before its line is rejected.
MAX_RECORD_BYTES = 32 << 20
#: A batch is sent early once its raw records take this much, so memory stays bounded for
#: rows of big values too.
_MAX_BATCH_BYTES = 64 << 20

#: Format names ``load_file`` accepts, and the format each stands for.
FORMATS = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl", "json": "jsonl"}
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
_CHECKPOINT_VERSION = 1
_RAW_LIMIT = 4096  # raw text kept for a record rejected for its size
_REPR_LIMIT = 60

_INT = re.compile(r"[+-]?[0-9]+")
_BOOLS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
_BOOL_FORMS = "true/false/1/0/yes/no"


@dataclass
class LoadReport:
    """What :func:`load_file` did.

    :ivar read: records read by this run (good and bad; blank lines and the header excluded)
    :ivar loaded: rows written by this run
    :ivar rejected: records of this run sent to the rejects file
    :ivar skipped: records before the resume point, written by an earlier run (0 unless
        resumed), so ``skipped + read`` is every record of the file
    :ivar seconds: wall time of this run
    :ivar rejects_path: the rejects file, when it holds at least one reject (this run's or an
        earlier run's of a resumed load), else ``None``
    """

    read: int
    loaded: int
    rejected: int
    skipped: int
    seconds: float
    rejects_path: str | None

    @property
    def rows_per_second(self) -> float:
        """Rows written per second of this run."""
        return self.loaded / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for people: ``read 1,000 / loaded 990 / rejected 10 / 0.52 s / …``."""
        parts = [f"read {self.read:,}", f"loaded {self.loaded:,}", f"rejected {self.rejected:,}"]
        if self.skipped:
            parts.append(f"skipped {self.skipped:,} (resumed)")
        parts += [f"{self.seconds:.2f} s", f"{self.rows_per_second:,.0f} rows/s"]
        text = " / ".join(parts)
        return f"{text}; rejects in {self.rejects_path}" if self.rejects_path else text


def load_file(
    table: IndexedTable,
    path: str | Path,
    *,
    format: str | None = None,
    null_token: str | None = None,
    rejects_path: str | Path | None = None,
    batch_size: int = 1000,
    bulk: bool = False,
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
    encoding: str = "utf-8",
) -> LoadReport:
    """Load a CSV or JSON Lines file into ``table``, streaming, in batches (see the module doc).

    :param table: the table to load into
    :param path: the input file
    :param format: ``csv`` or ``jsonl`` (``ndjson`` and ``json`` mean JSON Lines); default:
        from the file's suffix
    :param null_token: a CSV field equal to it is NULL, like an empty field (e.g. ``"NA"``)
    :param rejects_path: where bad rows go; default ``<path>.rejects.jsonl``
    :param batch_size: rows per ``put_many`` call, and per checkpoint
    :param bulk: insert-only writes (see :meth:`~culvert_py.client.IndexedTable.put_many`):
        faster, right only for keys that are new and appear once in the file
    :param resume: continue from the checkpoint of an interrupted load of the same file into
        the same table (a fresh load when there is none)
    :param progress: called as ``progress(bytes_read, total_bytes)`` after each batch is written
    :param encoding: the file's text encoding; it must be ASCII-compatible (UTF-8, Latin-1,
        …), since lines are split in binary
    :return: the counts of this run, see :class:`LoadReport`
    :raises LoadError: unreadable file, unknown format or encoding, a CSV header with unknown
        or duplicate columns or without a row-key column, a file changed since the checkpoint
    :raises StoreError: when the store fails (after retries); the checkpoint lets
        ``resume=True`` continue
    """
    source = Path(path)
    fmt = _format_of(source, format)
    _check_encoding(encoding)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise LoadError(f"batch_size must be a positive integer, got {batch_size!r}")
    try:
        fh = open(source, "rb")  # noqa: SIM115 - closed by the with below, after fstat
    except OSError as exc:
        raise LoadError(f"cannot read {str(source)!r}: {exc.strerror or exc}") from None
    with fh:
        stat = os.fstat(fh.fileno())
        rejects = (
            Path(rejects_path) if rejects_path is not None else Path(f"{source}.rejects.jsonl")
        )
        job = _Load(
            table=table,
            fh=fh,
            path=source.resolve(),
            fmt=fmt,
            encoding=encoding,
            null_token=null_token,
            rejects=rejects,
            batch_size=batch_size,
            bulk=bulk,
            progress=progress,
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
        )
        return job.run(resume)


def parse_key(table: TableDef, text: str) -> object:
    """Parse a row key given as text (a CLI argument) into the value(s) the table's key takes.

    A one-column key is the text typed like a CSV field (``42`` for an int key); a composite
    key is a JSON array with one element per key column, typed like JSON Lines values
    (``'["AA", 11, "2013-01-01T05:00:00Z"]'``).

    :param table: the table definition
    :param text: the key text
    :return: a scalar for a one-column key, else a tuple
    :raises EncodingError: when the text does not fit the key's columns
    """
    columns = table.row_key
    if len(columns) == 1:
        name = columns[0]
        try:
            return _csv_value(text, table.columns[name], name)
        except _Bad as exc:
            raise EncodingError(f"{table.name}: key {text!r}: {exc}") from None
    try:
        parts = json.loads(text)
    except ValueError:
        parts = None
    if not isinstance(parts, list) or len(parts) != len(columns):
        raise EncodingError(
            f"{table.name}: key {text!r}: expected a JSON array of {len(columns)} values "
            f"({', '.join(columns)})"
        )
    try:
        return tuple(
            _json_value(v, table.columns[c], c) for c, v in zip(columns, parts, strict=True)
        )
    except _Bad as exc:
        raise EncodingError(f"{table.name}: key {text!r}: {exc}") from None


# --------------------------------------------------------------------------- arguments


def _format_of(source: Path, given: str | None) -> str:
    if given is not None:
        try:
            return FORMATS[given.lower()]
        except KeyError:
            raise LoadError(
                f"unknown load format {given!r} (known: {', '.join(FORMATS)})"
            ) from None
    fmt = _SUFFIXES.get(source.suffix.lower())
    if fmt is None:
        raise LoadError(
            f"cannot tell the format of {str(source)!r} from its suffix "
            f"(known: {', '.join(_SUFFIXES)}); pass format='csv' or format='jsonl'"
        )
    return fmt


def _check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise LoadError(f"unknown text encoding {encoding!r}") from None
    # Lines are split on b"\n" and CSV structure found on b'"' and b"," before decoding, which
    # is only right when those characters are those single bytes (not so in UTF-16).
    if '\n",'.encode(encoding, "replace") != b'\n",':
        raise LoadError(
            f"encoding {encoding!r} is not ASCII-compatible; convert the file to UTF-8 first"
        )


# --------------------------------------------------------------------------- reading


class _Bad(Exception):
    """A record or value that goes to the rejects file; the message is the reason."""


@dataclass
class _Record:
    """One record of the input: its lines, where it ends, its raw text and its parse."""

    line: int  # first physical line, 1-based
    last_line: int  # last physical line
    end: int  # byte offset just after it
    raw: str  # the text without its final line break (undecodable bytes escaped)
    size: int  # bytes in the file
    value: Any = None  # CSV: list of fields; JSON: the parsed value
    reason: str | None = None  # set when the record itself is bad


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


def _overlong(line: _Line, encoding: str) -> _Record:
    raw = line.data.decode(encoding, "backslashreplace") + "…"
    reason = f"line longer than {MAX_RECORD_BYTES:,} bytes (MAX_RECORD_BYTES)"
    return _Record(line.number, line.number, line.end, raw, line.size, reason=reason)


def _json_records(lines: Iterator[_Line], encoding: str) -> Iterator[_Record]:
    for line in lines:
        if line.overlong:
            yield _overlong(line, encoding)
            continue
        text, bad = _decode(line.data, encoding)
        if not bad and not text.strip():
            continue
        record = _Record(line.number, line.number, line.end, text, line.size, reason=bad)
        if not bad:
            try:
                record.value = json.loads(text)
            except ValueError as exc:
                record.reason = f"malformed JSON: {exc}"
        yield record


def _csv_records(lines: Iterator[_Line], encoding: str) -> Iterator[_Record]:
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
                yield _Record(first.number, first.number, first.end, text, first.size, fields, bad)
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
                yield _Record(first.number, first.number, first.end, text, first.size, None, reason)
                break
            parts.append(more)
            total += more.size
            in_quotes = _ends_in_quotes(more.data, True)
        else:
            data = b"".join(p.data + p.brk for p in parts[:-1]) + parts[-1].data
            text, bad = _decode(data, encoding)
            record = _Record(first.number, parts[-1].number, parts[-1].end, text, total, None, bad)
            if not bad:
                try:
                    record.value = _split_quoted(text)
                except _Bad as exc:
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
    """Split a CSV record holding quotes into its fields (RFC 4180: ``""`` is one quote).

    :raises _Bad: for data after a closing quote, or a quote left open
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
                    raise _Bad("malformed CSV: unterminated quoted field")
                pieces.append(text[position:close])
                if text[close + 1 : close + 2] == '"':
                    pieces.append('"')
                    position = close + 2
                    continue
                position = close + 1
                break
            if position < size and text[position] != ",":
                raise _Bad(
                    f"malformed CSV: field {len(fields) + 1}: {text[position]!r} after a closing "
                    'quote (a quote inside a quoted field is written twice: "")'
                )
            fields.append("".join(pieces))
        else:
            comma = text.find(",", position)
            end = size if comma < 0 else comma
            fields.append(text[position:end])
            position = end
        if position >= size:
            return fields
        position += 1  # the comma


# --------------------------------------------------------------------------- values


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 4] + "…" + text[-1]


def _expected(kind: str, text: str) -> _Bad:
    return _Bad(f"expected {kind}, got {_short(text)}")


def _parse_int(text: str) -> int:
    stripped = text.strip()
    if not _INT.fullmatch(stripped):
        raise _expected("int", text)
    return int(stripped)


def _parse_float(text: str) -> float:
    # float() also reads "1_000"; int fields refuse underscores, so floats do too.
    try:
        if "_" in text:
            raise ValueError
        return float(text)
    except ValueError:
        raise _expected("float", text) from None


def _parse_bytes(text: str) -> bytes:
    stripped = text.strip()
    if stripped[:2] in ("\\x", "0x", "0X"):
        stripped = stripped[2:]
    try:
        return bytes.fromhex(stripped)
    except ValueError:
        raise _expected("hex bytes (e.g. 0x00ff)", text) from None


def _parse_bool(text: str) -> bool:
    try:
        return _BOOLS[text.strip().lower()]
    except KeyError:
        raise _expected(f"bool ({_BOOL_FORMS})", text) from None


def _parse_datetime(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise _expected("ISO-8601 datetime (e.g. 2024-05-01T10:00:00Z)", text) from None
    if value.utcoffset() is None:
        raise _Bad(
            f"datetime {_short(text)} has no UTC offset; add one, e.g. 'Z' or '+02:00' "
            "(naive datetimes are rejected rather than guessed)"
        )
    return value


_TEXT_PARSERS: dict[str, Callable[[str], object]] = {
    "int": _parse_int,
    "float": _parse_float,
    "str": str,
    "bytes": _parse_bytes,
    "bool": _parse_bool,
    "datetime": _parse_datetime,
}


def _csv_value(text: str, type_name: str, column: str) -> object:
    """A CSV field typed for its column (not NULL: the caller handles those)."""
    try:
        return check_value(_TEXT_PARSERS[type_name](text), type_name, column)
    except _Bad as exc:
        raise _Bad(f"column {column!r}: {exc}") from None
    except EncodingError as exc:
        raise _Bad(str(exc)) from None


def _json_value(value: object, type_name: str, column: str) -> object:
    """A JSON value checked for its column; datetimes and bytes come as strings."""
    try:
        if value is not None and type_name in ("datetime", "bytes"):
            if not isinstance(value, str):
                raise _Bad(f"expected a {type_name} string, got JSON {_short(value)}")
            value = _TEXT_PARSERS[type_name](value)
        return check_value(value, type_name, column)
    except _Bad as exc:
        raise _Bad(f"column {column!r}: {exc}") from None
    except EncodingError as exc:
        raise _Bad(str(exc)) from None


class _Rows:
    """Turns parsed records into checked row dicts; one reason per bad row.

    :param table: the table definition
    :param null_token: CSV text that means NULL
    """

    def __init__(self, table: TableDef, null_token: str | None) -> None:
        self.table = table
        self.nulls = {"", null_token} if null_token is not None else {""}
        self.header: list[tuple[str, str]] = []
        # Only term/range entries carry values in their keys; text tokens are bounded by
        # the tokenizer, so their keys cannot get near the limit.
        self.keyed = [IndexKeys(table, i) for i in table.indexes.values() if i.kind != "text"]

    def set_header(self, record: _Record, path: Path) -> None:
        """Check the CSV header and remember its columns.

        :raises LoadError: for a bad header: every row would be rejected, so nothing loads
        """
        where = f"{str(path)!r} line {record.line} (header)"
        if record.reason:
            raise LoadError(f"{where}: {record.reason}")
        names = [name.strip() for name in record.value]
        known = self.table.columns
        unknown = [n for n in names if n not in known]
        if unknown:
            raise LoadError(
                f"{where}: unknown column(s) {', '.join(map(repr, unknown))} for table "
                f"{self.table.name!r} (known: {', '.join(known)})"
            )
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise LoadError(f"{where}: duplicate column(s) {', '.join(map(repr, duplicates))}")
        missing = [c for c in self.table.row_key if c not in names]
        if missing:
            raise LoadError(
                f"{where}: row-key column(s) {', '.join(map(repr, missing))} missing; "
                f"the key of {self.table.name!r} is ({', '.join(self.table.row_key)})"
            )
        self.header = [(n, known[n]) for n in names]

    def from_csv(self, fields: list[str]) -> dict[str, object]:
        if len(fields) != len(self.header):
            raise _Bad(
                f"malformed CSV: expected {len(self.header)} fields (as the header), "
                f"got {len(fields)}"
            )
        row: dict[str, object] = {}
        problems = []
        for (name, type_name), text in zip(self.header, fields, strict=True):
            if text in self.nulls:
                row[name] = None
                continue
            try:
                row[name] = _csv_value(text, type_name, name)
            except _Bad as exc:
                problems.append(str(exc))
        if problems:
            raise _Bad("; ".join(problems))
        return row

    def from_json(self, value: object) -> dict[str, object]:
        if not isinstance(value, dict):
            raise _Bad(f"expected a JSON object, got {type(value).__name__} {_short(value)}")
        known = self.table.columns
        unknown = [k for k in value if k not in known]
        if unknown:
            raise _Bad(
                f"unknown column(s) {', '.join(map(repr, unknown))} (known: {', '.join(known)})"
            )
        row: dict[str, object] = {}
        problems = []
        for name, item in value.items():
            try:
                row[name] = _json_value(item, known[name], name)
            except _Bad as exc:
                problems.append(str(exc))
        if problems:
            raise _Bad("; ".join(problems))
        return row

    def check(self, row: Mapping[str, object]) -> bytes:
        """Check the row key and sizes of a typed row; return its primary key.

        :raises _Bad: for a missing or NULL row-key column, an oversize cell or key
        """
        for column in self.table.row_key:
            if column not in row:
                raise _Bad(f"row-key column {column!r} is missing")
            if row[column] is None:
                raise _Bad(f"row-key column {column!r} is NULL")
        # An encoded str takes at most 4 bytes per character, doubled by NUL escapes, plus
        # header and terminator: rows under the bounds below skip the exact (costly) checks.
        bound = 1
        for name, value in row.items():
            if isinstance(value, str | bytes):
                worst = 8 * len(value) + 3
                if worst > MAX_CELL_BYTES:
                    size = len(encode_value(value, self.table.columns[name]))
                    if size > MAX_CELL_BYTES:
                        raise _Bad(
                            f"column {name!r}: value takes {size:,} bytes encoded, more than "
                            f"the {MAX_CELL_BYTES:,} allowed (MAX_CELL_BYTES)"
                        )
                bound += worst
            else:
                bound += 10
        pk = primary_key(self.table, row)
        if 2 * bound > MAX_KEY_BYTES:
            if len(pk) > MAX_KEY_BYTES:
                raise _Bad(f"row key takes {len(pk):,} bytes, more than HBase's {MAX_KEY_BYTES:,}")
            for keys in self.keyed:
                if any(len(k) > MAX_KEY_BYTES for k in keys.entry_keys(row, pk)):
                    raise _Bad(
                        f"index {keys.index.name!r}: entry key longer than HBase's "
                        f"{MAX_KEY_BYTES:,} bytes (values of {', '.join(keys.index.columns)} "
                        "too long to index)"
                    )
        return pk


# --------------------------------------------------------------------------- the load


@dataclass
class _Batch:
    """Records read since the last batch: rows to write, rejects to list, where they end."""

    rows: list[dict] = field(default_factory=list)
    keys: set[bytes] = field(default_factory=set)
    rejects: list[bytes] = field(default_factory=list)
    read: int = 0
    size: int = 0
    end: int = 0
    last_line: int = 0


def _reject_line(record: _Record, reason: str) -> bytes:
    document = {"line": record.line, "raw": record.raw, "reason": reason}
    return (json.dumps(document, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace")


class _Load:
    """One run of :func:`load_file`: reads records, sends batches, checkpoints in order."""

    def __init__(
        self,
        *,
        table: IndexedTable,
        fh: IO[bytes],
        path: Path,
        fmt: str,
        encoding: str,
        null_token: str | None,
        rejects: Path,
        batch_size: int,
        bulk: bool,
        progress: Callable[[int, int], None] | None,
        size: int,
        mtime_ns: int,
    ) -> None:
        self.table = table
        self.fh = fh
        self.path = path
        self.fmt = fmt
        self.encoding = encoding
        self.null_token = null_token
        self.rejects_path = rejects
        self.batch_size = batch_size
        self.bulk = bulk
        self.progress = progress
        self.size = size
        self.mtime_ns = mtime_ns
        self.meta = table.client.meta
        self.name = f"load:{table.name}:{path}"
        self.rows = _Rows(table.definition, null_token)
        self.depth = max(1, table.client.pipeline_depth)
        self.base = {"read": 0, "loaded": 0, "rejected": 0}  # from the checkpoint
        self.done = {"read": 0, "loaded": 0, "rejected": 0}  # by this run
        self.rejects_size = 0
        self._rejects_fh: IO[bytes] | None = None

    def run(self, resume: bool) -> LoadReport:
        started = time.perf_counter()
        checkpoint = self._resume_point() if resume else None
        if checkpoint is None:
            # A fresh start: an old checkpoint must not outlive the rejects file it points into.
            self.meta.clear_checkpoint(self.name)
        records = self._records(0, 1)
        if self.fmt == "csv":
            header = next(records, None)
            if header is not None:
                self.rows.set_header(header, self.path)
        elif checkpoint is None:
            records = self._refuse_json_array(records)
        if checkpoint is not None:
            self.base = {k: checkpoint[k] for k in self.base}
            self.fh.seek(checkpoint["offset"])
            records = self._records(checkpoint["offset"], checkpoint["line"] + 1)
            log.info(
                "%s: resuming at line %d (%d rows before it)",
                self.name,
                checkpoint["line"] + 1,
                checkpoint["read"],
            )
        self._prepare_rejects(checkpoint)
        try:
            self._load(records)
        finally:
            if self._rejects_fh is not None:
                self._rejects_fh.close()
        self.meta.clear_checkpoint(self.name)
        report = LoadReport(
            read=self.done["read"],
            loaded=self.done["loaded"],
            rejected=self.done["rejected"],
            skipped=self.base["read"],
            seconds=time.perf_counter() - started,
            rejects_path=str(self.rejects_path) if self.rejects_size else None,
        )
        log.info("%s: %s", self.name, report.summary())
        return report

    # -- reading ------------------------------------------------------------------------

    def _records(self, offset: int, line: int) -> Iterator[_Record]:
        lines = _lines(self.fh, offset, line, self.encoding)
        if self.fmt == "csv":
            return _csv_records(lines, self.encoding)
        return _json_records(lines, self.encoding)

    def _refuse_json_array(self, records: Iterator[_Record]) -> Iterator[_Record]:
        """Stop early on a file that holds one JSON array: every "line" of it would be bad."""
        first = next(records, None)
        if (
            first is not None
            and first.raw.lstrip().startswith("[")
            and (first.reason or isinstance(first.value, list))
        ):
            raise LoadError(
                f"{str(self.path)!r} line {first.line}: the file holds a JSON array; the "
                "loader reads JSON Lines, one object per line (convert with jq -c '.[]')"
            )
        if first is not None:
            yield first
        yield from records

    def _resume_point(self) -> dict | None:
        text = self.meta.load_checkpoint(self.name)
        if text is None:
            log.info("%s: no checkpoint to resume from; loading from the start", self.name)
            return None
        where = f"load of {str(self.path)!r} into {self.table.name!r}"
        try:
            checkpoint = json.loads(text)
            if checkpoint.get("version") != _CHECKPOINT_VERSION:
                raise ValueError(f"version {checkpoint.get('version')!r}")
            for key in ("size", "mtime_ns", "line", "offset", "read", "loaded", "rejected"):
                if not isinstance(checkpoint[key], int):
                    raise ValueError(f"{key} is not an integer")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LoadError(
                f"cannot resume the {where}: its checkpoint is unreadable ({exc}); "
                "load again without resume"
            ) from None
        if (checkpoint["size"], checkpoint["mtime_ns"]) != (self.size, self.mtime_ns):
            raise LoadError(
                f"cannot resume the {where}: the file changed since the checkpoint (size "
                f"{checkpoint['size']:,} -> {self.size:,} bytes, modified "
                f"{_when(checkpoint['mtime_ns'])} -> {_when(self.mtime_ns)}); resuming would "
                "skip or repeat rows, so load it again without resume"
            )
        for key, now in (("format", self.fmt), ("null", self.null_token)):
            if checkpoint.get(key) != now:
                raise LoadError(
                    f"cannot resume the {where}: it was started with {key} "
                    f"{checkpoint.get(key)!r}, not {now!r}; resume with the same options"
                )
        return checkpoint

    # -- rejects ------------------------------------------------------------------------

    def _prepare_rejects(self, checkpoint: dict | None) -> None:
        """Truncate the rejects file: to empty, or to its size at the checkpoint."""
        path = self.rejects_path
        keep = 0
        if checkpoint is not None and checkpoint.get("rejects") == str(path.resolve()):
            keep = checkpoint.get("rejects_size", 0)
        try:
            size = path.stat().st_size if path.exists() else 0
            if keep > size:
                log.warning("%s: rejects file %s shorter than at the checkpoint", self.name, path)
                keep = size
            if size > keep:
                os.truncate(path, keep)
        except OSError as exc:
            raise LoadError(f"cannot write rejects file {str(path)!r}: {exc.strerror}") from None
        self.rejects_size = keep

    def _write_rejects(self, lines: list[bytes]) -> None:
        if not lines:
            return
        try:
            if self._rejects_fh is None:
                self._rejects_fh = open(self.rejects_path, "ab")  # noqa: SIM115 - closed in run
            self._rejects_fh.writelines(lines)
            # Flushed before the checkpoint that counts them, so a crash loses none of them.
            self._rejects_fh.flush()
        except OSError as exc:
            raise LoadError(
                f"cannot write rejects file {str(self.rejects_path)!r}: {exc.strerror}"
            ) from None
        self.rejects_size += sum(len(line) for line in lines)

    # -- writing ------------------------------------------------------------------------

    def _load(self, records: Iterator[_Record]) -> None:
        window: deque[tuple[_Batch, Future | None]] = deque()
        pool = ThreadPoolExecutor(max_workers=self.depth, thread_name_prefix="culvert-load")
        try:
            batch = _Batch()
            for record in records:
                self._add(batch, record)
                if (
                    len(batch.rows) >= self.batch_size
                    or len(batch.rejects) >= self.batch_size
                    or batch.size >= _MAX_BATCH_BYTES
                ):
                    self._send(batch, window, pool)
                    batch = _Batch()
            if batch.read:
                self._send(batch, window, pool)
            while window:
                self._finish(*window.popleft())
        finally:
            # Every batch sent has ended before the load returns or raises: nothing writes
            # behind the caller's back (a batch not yet started is dropped; resume redoes it).
            pool.shutdown(wait=True, cancel_futures=True)

    def _add(self, batch: _Batch, record: _Record) -> None:
        batch.read += 1
        batch.size += record.size
        batch.end = record.end
        batch.last_line = record.last_line
        try:
            if record.reason:
                raise _Bad(record.reason)
            if self.fmt == "csv":
                row = self.rows.from_csv(record.value)
            else:
                row = self.rows.from_json(record.value)
            pk = self.rows.check(row)
        except _Bad as exc:
            batch.rejects.append(_reject_line(record, str(exc)))
            return
        except CulvertError as exc:  # a check this module missed: still one row's problem
            batch.rejects.append(_reject_line(record, str(exc)))
            return
        batch.rows.append(row)
        batch.keys.add(pk)

    def _send(self, batch: _Batch, window: deque, pool: ThreadPoolExecutor) -> None:
        # A key written by a batch in flight waits for it, so the later line wins.
        for other, future in window:
            if future is not None and not batch.keys.isdisjoint(other.keys):
                future.result()
        while len(window) >= self.depth:
            self._finish(*window.popleft())
        future = None
        if batch.rows:
            future = pool.submit(
                self.table.put_many, batch.rows, bulk=self.bulk, batch_size=self.batch_size
            )
        window.append((batch, future))
        # Checkpoint finished batches now, oldest first: a checkpoint covers a batch only when
        # every batch before it is written too.
        while window and (window[0][1] is None or window[0][1].done()):
            self._finish(*window.popleft())

    def _finish(self, batch: _Batch, future: Future | None) -> None:
        if future is not None:
            future.result()
        self._write_rejects(batch.rejects)
        self.done["read"] += batch.read
        self.done["loaded"] += len(batch.rows)
        self.done["rejected"] += len(batch.rejects)
        totals = {k: self.base[k] + self.done[k] for k in self.base}
        checkpoint = {
            "version": _CHECKPOINT_VERSION,
            "table": self.table.name,
            "file": str(self.path),
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "format": self.fmt,
            "null": self.null_token,
            "line": batch.last_line,
            "offset": batch.end,
            **totals,
            "rejects": str(self.rejects_path.resolve()),
            "rejects_size": self.rejects_size,
        }
        self.meta.save_checkpoint(self.name, json.dumps(checkpoint))
        if self.progress is not None:
            self.progress(batch.end, self.size)


def _when(mtime_ns: int) -> str:
    return datetime.fromtimestamp(mtime_ns / 1e9).isoformat(timespec="seconds")
