"""One load of a file or a DataFrame into a table: batches written in order, each checkpointed.

Records are typed into rows (:mod:`culvert_py.load.fields`) and gathered into batches of
``batch_size`` rows; the batches go to :meth:`~culvert_py.table.IndexedTable.write_batches`,
the one window of batches in flight. Each time a batch and every batch before it are
written, its rejects are appended to the rejects file
(:mod:`culvert_py.load.rejects`), a checkpoint saved (:mod:`culvert_py.load.checkpoint`) and
``progress`` called. The behaviour users see is described in :mod:`culvert_py.load`.
A Parquet file or a DataFrame is read by :class:`~culvert_py.load.parquet.ArrowSource`, row by
row, through the same batches, rejects and checkpoints (its offset counts rows, not bytes).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from culvert_py.errors import ArgumentError, CulvertError, LoadError
from culvert_py.frames import arrow_table_of, require
from culvert_py.load.checkpoint import (
    checkpoint_name,
    checkpoint_text,
    read_checkpoint,
    rejects_kept,
)
from culvert_py.load.fields import Rows, check_null_token
from culvert_py.load.parquet import ArrowSource
from culvert_py.load.records import (
    Record,
    Reject,
    check_encoding,
    format_of,
    read_records,
    refuse_json_array,
)
from culvert_py.load.rejects import RejectsFile

#: The table a load writes to: an :class:`~culvert_py.table.IndexedTable` (not imported,
#: since the table sits above the loader and hands itself down).
IndexedTable = Any

log = logging.getLogger(__name__)

#: A batch is sent early once its raw records take this much, so memory stays bounded for
#: rows of big values too.
_MAX_BATCH_BYTES = 64 << 20


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
    :ivar existed: rows of this run a bulk load found already in the table (before the load,
        or earlier in the file), so written by the full protocol; 0 unless ``bulk``
    :ivar rejected_earlier: rejects of the earlier runs of a resumed load, still in the
        rejects file: ``rejected_earlier + rejected`` are the rejects of the whole file
    """

    read: int
    loaded: int
    rejected: int
    skipped: int
    seconds: float
    rejects_path: str | None
    existed: int = 0
    rejected_earlier: int = 0

    @property
    def rows_per_second(self) -> float:
        """Rows written per second of this run."""
        return self.loaded / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for people: ``read 1,000 / loaded 990 / rejected 10 / 0.52 s / …``."""
        rejected = f"rejected {self.rejected:,}"
        if self.rejected_earlier:
            rejected += f" ({self.rejected + self.rejected_earlier:,} with earlier runs)"
        parts = [f"read {self.read:,}", f"loaded {self.loaded:,}", rejected]
        if self.skipped:
            parts.append(f"skipped {self.skipped:,} (resumed)")
        parts += [f"{self.seconds:.2f} s", f"{self.rows_per_second:,.0f} rows/s"]
        text = " / ".join(parts)
        if self.existed:
            text += f"; {self.existed:,} row(s) already existed: written in safe mode"
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
    """Load a CSV, JSON Lines or Parquet file into ``table``, streaming, in batches (see
    :mod:`culvert_py.load`).

    :param table: the table to load into
    :param path: the input file
    :param format: ``csv``, ``jsonl`` (``ndjson`` and ``json`` mean JSON Lines) or
        ``parquet`` (needs the ``dataframe`` extra); default: from the file's suffix
    :param null_token: an unquoted CSV field equal to it is NULL (e.g. ``"NA"``), and an
        empty one is then the empty string (see :mod:`culvert_py.load`); ``""`` is the same
        as none
    :param rejects_path: where bad rows go; default ``<path>.rejects.jsonl``
    :param batch_size: rows per write batch, and per checkpoint
    :param bulk: fast for keys that are new, still exact for keys already in the table: those
        are found per batch (one read) and written by the full protocol, counted in
        :attr:`LoadReport.existed` (see :meth:`~culvert_py.table.IndexedTable.put_many`)
    :param resume: continue from the checkpoint of an interrupted load of the same file into
        the same table (a fresh load when there is none)
    :param progress: called as ``progress(bytes_read, total_bytes)`` after each batch is written
        (Parquet: ``progress(rows_read, total_rows)``)
    :param encoding: the file's text encoding; it must be ASCII-compatible (UTF-8, Latin-1,
        …), since lines are split in binary
    :return: the counts of this run, see :class:`LoadReport`
    :raises ArgumentError: for a malformed argument, before the file is opened: an unknown
        format or encoding (or one not ASCII-compatible), a ``null_token`` holding a comma,
        quote or line break, a ``batch_size`` below 1, a ``bulk`` or ``resume`` that is not a
        bool, a ``progress`` that is not callable
    :raises LoadError: unreadable file (or a directory), a file whose suffix names no format,
        a CSV header with unknown or duplicate columns or without a row-key column, a file
        changed since the checkpoint
    :raises StoreError: when the store fails (after retries); the checkpoint lets
        ``resume=True`` continue
    """
    source = Path(path)
    _check_options(batch_size, bulk, resume, progress)
    check_encoding(encoding)
    null_token = check_null_token(null_token)
    fmt = format_of(source, format) if format is not None else None
    if source.is_dir():
        raise LoadError(
            f"cannot read {str(source)!r}: it is a directory, not a CSV, JSONL or Parquet file"
        )
    fmt = fmt or format_of(source, None)
    try:
        fh = open(source, "rb")  # noqa: SIM115 - closed by the with below, after fstat
    except OSError as exc:
        raise LoadError(f"cannot read {str(source)!r}: {exc.strerror or exc}") from exc
    with fh:
        stat = os.fstat(fh.fileno())
        rejects = (
            Path(rejects_path) if rejects_path is not None else Path(f"{source}.rejects.jsonl")
        )
        rows = _parquet_source(table, fh, source) if fmt == "parquet" else None
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
            source=rows,
        )
        return job.run(resume)


def _parquet_source(table: IndexedTable, fh: IO[bytes], path: Path) -> ArrowSource:
    pq = require("pyarrow.parquet")
    pa = require()
    try:
        parquet = pq.ParquetFile(fh)
    except (OSError, pa.ArrowException) as exc:
        raise LoadError(f"cannot read {str(path)!r} as Parquet: {exc}") from exc
    return ArrowSource(table.definition, parquet, repr(str(path)))


def load_dataframe(
    table: IndexedTable,
    data: Any,
    *,
    name: str = "dataframe",
    rejects_path: str | Path | None = None,
    batch_size: int = 1000,
    bulk: bool = False,
    resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> LoadReport:
    """Load a pandas DataFrame or an Arrow table into ``table`` as a Parquet file of the same
    columns loads: typed per column, bad rows to the rejects file, checkpoints, progress.

    :param table: the table to load into
    :param data: a ``pandas.DataFrame``, ``pyarrow.Table`` or ``pyarrow.RecordBatch``; its
        columns name table columns (see :func:`~culvert_py.frames.arrow_table_of`)
    :param name: names this load's checkpoint and, by default, its rejects file
        (``<name>.rejects.jsonl``); ``resume=True`` continues the load of that name, checking
        only that the frame has as many rows (the caller vouches it is the same data)
    :param rejects_path: where bad rows go (their ``line`` is the 1-based row number)
    :param batch_size: rows per write batch, and per checkpoint
    :param bulk: as for :func:`load_file`
    :param resume: continue an interrupted load of the same ``name`` into the same table
    :param progress: called as ``progress(rows_read, total_rows)`` after each batch is written
    :return: the counts of this run, see :class:`LoadReport`
    :raises ArgumentError: for data that is not a frame, a ``name`` that is not a non-empty
        string, and the malformed arguments :func:`load_file` refuses
    :raises LoadError: for columns that make every row bad, a resumed frame of another length
    :raises MissingDependencyError: without pyarrow (``pip install culvert_py[dataframe]``)
    """
    if not isinstance(name, str) or not name:
        raise ArgumentError(f"put_dataframe: name={name!r:.60}: expected a non-empty string")
    _check_options(batch_size, bulk, resume, progress)
    frame = arrow_table_of(data, f"{table.name}: put_dataframe")
    where = f"dataframe {name!r}"
    source = ArrowSource(table.definition, frame, where)
    job = _Load(
        table=table,
        fh=None,
        path=Path(f"<{where}>"),
        fmt="parquet",
        encoding="utf-8",
        null_token=None,
        rejects=Path(rejects_path) if rejects_path is not None else Path(f"{name}.rejects.jsonl"),
        batch_size=batch_size,
        bulk=bulk,
        progress=progress,
        size=source.total,
        mtime_ns=0,
        source=source,
    )
    return job.run(resume)


def _check_options(batch_size: object, bulk: object, resume: object, progress: object) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ArgumentError(f"load: batch_size={batch_size!r:.60}: expected an integer >= 1")
    for name, flag in (("bulk", bulk), ("resume", resume)):
        if not isinstance(flag, bool):
            raise ArgumentError(f"load: {name}={flag!r:.60}: expected True or False")
    if progress is not None and not callable(progress):
        raise ArgumentError(f"load: progress={progress!r:.60}: expected a callable or None")


@dataclass
class _Batch:
    """Records read since the last batch: rows to write, rejects to list, where they end."""

    rows: dict[bytes, dict] = field(default_factory=dict)  # by primary key, later lines merged
    loaded: int = 0  # good records (a key given twice counts twice)
    rejects: list[bytes] = field(default_factory=list)
    read: int = 0
    size: int = 0
    end: int = 0
    last_line: int = 0


def _reject_line(record: Record, reason: str) -> bytes:
    document = {"line": record.line, "raw": record.raw, "reason": reason}
    return (json.dumps(document, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace")


class _Load:
    """One run of :func:`load_file`: reads records, sends batches, checkpoints in order."""

    def __init__(
        self,
        *,
        table: IndexedTable,
        fh: IO[bytes] | None,
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
        source: ArrowSource | None = None,
    ) -> None:
        self.table = table
        self.fh = fh
        self.path = path
        self.fmt = fmt
        self.encoding = encoding
        self.null_token = null_token
        self.batch_size = batch_size
        self.bulk = bulk
        self.progress = progress
        self.size = size
        self.mtime_ns = mtime_ns
        self.meta = table.client.meta
        self.name = checkpoint_name(table.name, path)
        self.rows = Rows(table.definition, null_token)
        self.rejects = RejectsFile(rejects)
        self.base = {"read": 0, "loaded": 0, "rejected": 0}  # from the checkpoint
        self.done = {"read": 0, "loaded": 0, "rejected": 0}  # by this run
        self.existed = 0  # rows bulk mode found already in the table
        self.source = source  # Parquet or a frame: records by row, offsets count rows
        self.total = source.total if source is not None else size  # what progress counts

    def run(self, resume: bool) -> LoadReport:
        started = time.perf_counter()
        point = self._resume_point() if resume else None
        if point is None:
            # A fresh start: an old checkpoint must not outlive the rejects file it points into.
            self.meta.clear_checkpoint(self.name)
        else:
            self.base = {k: point[k] for k in self.base}
            log.info(
                "%s: resuming at line %d (%d rows before it)",
                self.name,
                point["line"] + 1,
                point["read"],
            )
        if self.source is not None:
            records = self.source.records(point["offset"] if point else 0, self.batch_size)
        else:
            records = self._text_records(point)
        self.rejects.truncate(rejects_kept(point, self.rejects.path))
        with self.rejects:
            self._load(records)
        self.meta.clear_checkpoint(self.name)
        report = LoadReport(
            read=self.done["read"],
            loaded=self.done["loaded"],
            rejected=self.done["rejected"],
            skipped=self.base["read"],
            seconds=time.perf_counter() - started,
            rejects_path=str(self.rejects.path) if self.rejects.size else None,
            existed=self.existed,
            rejected_earlier=self.base["rejected"],
        )
        log.info("%s: %s", self.name, report.summary())
        return report

    def _text_records(self, point: dict | None) -> Iterator[Record]:
        assert self.fh is not None
        records = read_records(self.fh, self.fmt, 0, 1, self.encoding)
        if self.fmt == "csv":
            header = next(records, None)
            if header is not None:
                self.rows.set_header(header, self.path)
        elif point is None:
            records = refuse_json_array(records, self.path)
        if point is not None:
            self.fh.seek(point["offset"])
            records = read_records(
                self.fh, self.fmt, point["offset"], point["line"] + 1, self.encoding
            )
        return records

    def _resume_point(self) -> dict | None:
        text = self.meta.load_checkpoint(self.name)
        if text is None:
            log.info("%s: no checkpoint to resume from; loading from the start", self.name)
            return None
        where = f"load of {str(self.path)!r} into {self.table.name!r}"
        return read_checkpoint(
            text, where, size=self.size, mtime_ns=self.mtime_ns, fmt=self.fmt, null=self.null_token
        )

    # -- batches ------------------------------------------------------------------------

    def _load(self, records: Iterator[Record]) -> None:
        # Batches read but not yet reported written, oldest first: the window of
        # write_batches bounds them, so memory holds a few batches.
        unwritten: deque[_Batch] = deque()

        def batches() -> Iterator[dict[bytes, dict]]:
            batch = _Batch()
            for record in records:
                self._add(batch, record)
                if (
                    batch.loaded >= self.batch_size
                    or len(batch.rejects) >= self.batch_size
                    or batch.size >= _MAX_BATCH_BYTES
                ):
                    unwritten.append(batch)
                    yield batch.rows
                    batch = _Batch()
            if batch.read:
                unwritten.append(batch)
                yield batch.rows

        def written(_number: int, existed: int) -> None:
            self.existed += existed
            self._finish(unwritten.popleft())

        self.table.write_batches(batches(), self.bulk, on_written=written)

    def _add(self, batch: _Batch, record: Record) -> None:
        batch.read += 1
        batch.size += record.size
        batch.end = record.end
        batch.last_line = record.last_line
        try:
            if record.reason:
                raise Reject(record.reason)
            if self.source is not None:
                row = record.value  # typed by the source
            elif self.fmt == "csv":
                row = self.rows.from_csv(record.value)
            else:
                row = self.rows.from_json(record.value)
            pk = self.rows.check(row)
        except (Reject, CulvertError) as exc:
            # A CulvertError here (an oversized key from layout, a value the encoding
            # refuses) is about this row alone: nothing above touches the store.
            batch.rejects.append(_reject_line(record, str(exc)))
            return
        # Merged as put_many merges a batch: a later line updates the columns it names.
        batch.rows.setdefault(pk, {}).update(row)
        batch.loaded += 1

    def _finish(self, batch: _Batch) -> None:
        """Account for a batch written after every batch before it: rejects, checkpoint."""
        self.rejects.write(batch.rejects)
        self.done["read"] += batch.read
        self.done["loaded"] += batch.loaded
        self.done["rejected"] += len(batch.rejects)
        document = checkpoint_text(
            table=self.table.name,
            path=self.path,
            size=self.size,
            mtime_ns=self.mtime_ns,
            fmt=self.fmt,
            null=self.null_token,
            line=batch.last_line,
            offset=batch.end,
            totals={k: self.base[k] + self.done[k] for k in self.base},
            rejects=self.rejects.path,
            rejects_size=self.rejects.size,
        )
        self.meta.save_checkpoint(self.name, document)
        if self.progress is not None:
            self.progress(batch.end, self.total)
