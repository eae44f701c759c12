"""Batch loading of CSV, JSON Lines or Parquet files (or DataFrames) into an indexed table.

    with culvert_py.connect(url) as db:
        report = load_file(db.table("people"), "people.csv", null_token="NA")
        print(report.summary())

**Streaming.** The file is read in binary, one physical line at a time, and each line is
decoded on its own, so a line that is not valid in the file's encoding is one reject, not the
end of the load. Rows go through the consistent write protocol in batches of ``batch_size``,
by :meth:`~culvert_py.table.IndexedTable.write_batches` (as ``put_many`` sends them); memory
holds a few batches, whatever the file size. Several batches are in flight at once
(``client.pipeline_depth``), and a batch sharing a key with one in flight waits for it, so a
key given twice ends with its later line, as in a serial load.

**Formats** (from the suffix: ``.csv``; ``.jsonl``, ``.ndjson`` and ``.json`` are JSON Lines;
``.parquet`` and ``.pq`` are Parquet, read by :mod:`culvert_py.load.parquet` with the optional
``dataframe`` extra, which also loads a pandas DataFrame or Arrow table by
:func:`~culvert_py.load.job.load_dataframe`, i.e. ``table.put_dataframe(df)``; their columns,
types, rejects (``line`` is the row number) and resume offsets are described there):

* CSV (RFC 4180): comma-separated, the first record is the header naming the columns; a field
  in double quotes may hold commas, line breaks (LF, CR) and doubled quotes ``""``. A header
  naming a column the table does not have, or missing a row-key column, makes every row bad,
  so it raises :class:`~culvert_py.errors.LoadError` before anything is written. Columns the
  header leaves out are not touched (an existing row keeps their values).
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

NULL in CSV (the rules of PostgreSQL's ``COPY … CSV``, so a file can say every value): a
quoted field is never NULL, so ``""`` is the empty string (or empty bytes) and ``"NA"`` the
text NA. An unquoted field is NULL when it equals ``null_token``; an unquoted empty field is
NULL when there is no ``null_token``, and with one it is the empty value of a str or bytes
column (the file marks NULLs with the token, so an empty field is data), still NULL for the
other types, which have no empty value. What ``culvert query --format csv [--null TOKEN]``
writes loads back with the same ``null_token``. In JSON Lines ``null`` is NULL and values
keep their JSON types, checked by :func:`~culvert_py.encoding.check_value`: an int column
takes JSON integers only (``3.0`` is rejected, not truncated), a float column takes any number,
``NaN``/``Infinity``/``-Infinity`` and the strings ``"nan"``, ``"inf"``, ``"-inf"`` (any
case; JSON has no literal for them, so ``culvert query --format jsonl`` writes these strings,
which every JSON parser reads), a bool column takes ``true``/``false`` only; datetime and
bytes columns take strings in the CSV forms above (``culvert query`` writes bytes as hex and
datetimes as ISO-8601 in UTC with ``Z``). ``null_token`` applies to CSV only.

**Rejects.** Every bad row is one JSON object per line in the rejects file (default
``<file>.rejects.jsonl``): ``{"line": 1-based line of the input (the CSV header is line 1),
"raw": the line's text (undecodable bytes shown backslash-escaped), "reason": what and where}``.
Kinds: wrong type, unknown column, missing or NULL row-key column, bytes invalid in the
encoding, a cell whose encoding exceeds :data:`MAX_CELL_BYTES` or a row key (primary, or of an
index entry) beyond :data:`~culvert_py.layout.MAX_KEY_BYTES`, a CSV record with the wrong
number of fields or a bad quote, malformed JSON or a JSON value that is not an object, a
record longer than :data:`MAX_RECORD_BYTES`. An unterminated quote rejects its first line
only; parsing resumes on the next line. Blank lines are skipped. The rejects file is
truncated when a fresh load starts and created only when there is a reject.

**Resume.** After a batch is written, and every batch before it, the loader saves a checkpoint
in the meta table (:meth:`~culvert_py.meta.Meta.save_checkpoint`, named after the table and
the file's absolute path): the file's size and mtime, the last line and byte offset written,
the counts so far and the size of the rejects file. ``resume=True`` checks that the file is
unchanged (:class:`~culvert_py.errors.LoadError` otherwise), truncates the rejects file back
to the checkpoint (so rejects of a batch that was read but not checkpointed are not listed
twice) and continues at the saved offset. Batches that were in flight when the load died are
written again: a put of the same values is idempotent, so the final table is the one a clean
load gives. Without ``resume`` a load starts from the top and drops any old checkpoint; a
complete load clears its checkpoint. The counts of a resumed run are its own, but
:attr:`LoadReport.rejected_earlier` keeps the rejects of earlier runs, still in the file.

**Bulk** (``bulk=True``): fast when the keys are new, still exact when they are not. Each
batch reads the version cells of its keys (one call, not the indexed values); the keys that
already hold a row (in the table before, or earlier in the file) are written by the full
protocol and counted in :attr:`LoadReport.existed`, the others without the read and version
check. A resumed bulk load rewrites its in-flight batches that way too.

**Modules:** :mod:`~culvert_py.load.records` frames the file into raw records,
:mod:`~culvert_py.load.fields` types them into rows, :mod:`~culvert_py.load.job` runs the
load (batches, checkpoints via :mod:`~culvert_py.load.checkpoint`, the rejects file via
:mod:`~culvert_py.load.rejects`).
"""

from culvert_py.load.fields import MAX_CELL_BYTES, parse_key
from culvert_py.load.job import LoadReport, load_dataframe, load_file
from culvert_py.load.records import FORMATS, MAX_RECORD_BYTES

__all__ = [
    "FORMATS",
    "MAX_CELL_BYTES",
    "MAX_RECORD_BYTES",
    "LoadReport",
    "load_dataframe",
    "load_file",
    "parse_key",
]
