"""Drafting an adopted-table schema from a sample of an existing table's cells.

The first thing a new user of an existing HBase table runs (``culvert schema infer TABLE``):
:func:`infer_schema` reads a sample of rows, spread over the table's regions, and guesses
per ``family:qualifier`` a column type and codec (see ``docs/adopted-tables.md``) and the
row key's shape; :func:`to_toml` prints the draft for the user to check and edit::

    from culvert_py.ops import infer_schema, to_toml
    print(to_toml(infer_schema(store, "users", sample=1000)))

Guesses are conservative: a specific codec is only proposed when at least 95% of the
sampled values look like it (a few junk cells are tolerated and reported), else the next,
more general one (binary: ``int64``; text: ``utf8``; anything: ``raw``). The bytes alone
cannot tell everything apart (eight bytes are a long, a double or epoch milliseconds), so
the draft says, per column, how many rows held the cell and how many did not decode.
"""

from __future__ import annotations

import itertools
import logging
import re
import struct
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from culvert_py.adopted import ADOPTED_VERSION_QUALIFIER, FAMILY
from culvert_py.codecs import codec_for
from culvert_py.errors import ArgumentError, EncodingError, SchemaError, StoreError
from culvert_py.store import Store
from culvert_py.values import short_repr

log = logging.getLogger(__name__)

#: Share of the sampled values that must look like a codec for it to be proposed.
FIT_SHARE = 0.95

#: At most this many regions are scanned (evenly spaced), so a table of thousands of regions
#: costs a few dozen short scans, not one per region.
MAX_REGION_SCANS = 32

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_INT_TEXT = re.compile(r"[+-]?(0|[1-9][0-9]*)")  # no leading zeros: "007" is a code, not 7
_FLOAT_TEXT = re.compile(r"[+-]?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?|NaN|-?Infinity")
_ISO_TEXT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?"
)
_UUID_TEXT = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
_TIME_WORDS = frozenset(
    {"ts", "at", "time", "date", "created", "updated", "modified", "deleted", "expires"}
    | {"expiry", "epoch", "millis", "ms", "when", "seen", "since", "until", "born"}
)
#: 2000-01-01 .. 2100-01-01 (exclusive), in epoch milliseconds and seconds.
_MILLIS = (946_684_800_000, 4_102_444_800_000)
_SECONDS = (946_684_800, 4_102_444_800)
#: Strong delimiters split wherever they occur; weak ones also occur inside plain
#: identifiers, dates and UUIDs, so they need two varying parts.
_DELIMITERS = ("#", "|", ":", "-", "_")
_STRONG_DELIMITERS = ("#", "|")

#: Candidate (type, codec) pairs, most specific first; the first that fits is proposed.
# fmt: off
_ORDER: tuple[tuple[str, str], ...] = (
    ("bool", "bool"), ("datetime", "epoch_millis"), ("datetime", "epoch_seconds"),
    ("float", "float64"), ("int", "int64"), ("float", "float32"), ("int", "int32"),
    ("int", "int16"),  # binary above, text below: a value is one or the other (see _text)
    ("bool", "text"), ("int", "text"), ("float", "text"), ("datetime", "iso8601"),
    ("str", "utf8"), ("bytes", "raw"),
)
# fmt: on
_FLOAT32_WINDOW = ("float", "float32 window")  # looks like float32 but for a short decimal
_NONZERO = "nonzero"


@dataclass(frozen=True)
class InferredColumn:
    """One column of a draft: a guessed type and codec for a cell, or a row-key part.

    :ivar name: a valid column name made from the qualifier (unique in the draft)
    :ivar type_name: the guessed column type
    :ivar codec: the guessed codec; ``None`` for a row-key part (the key has one codec)
    :ivar cell: ``"family:qualifier"``; ``None`` for a row-key part
    :ivar rows: sampled rows that held the cell (every row for a key part)
    :ivar misfits: of those, the values that did not decode with ``codec``
    :ivar example: a decoded value, for the user to judge the guess by
    :ivar misfit_example: one value that did not decode (its repr), or ``None``
    :ivar hint: another reading the user may want instead, or ``None``
    """

    name: str
    type_name: str
    codec: str | None
    cell: str | None
    rows: int
    misfits: int = 0
    example: str | None = None
    misfit_example: str | None = None
    hint: str | None = None


@dataclass(frozen=True)
class InferredSchema:
    """A draft schema of an adopted table, as :func:`infer_schema` guessed it.

    :ivar name: the table's name in the draft
    :ivar hbase_table: the HBase table sampled
    :ivar family: the most common family (by cells sampled): the draft's default family
    :ivar row_key: the row-key column names (one, or the parts of a composite key)
    :ivar row_key_codec: ``utf8``, ``raw``, ``int32`` or ``int64``
    :ivar row_key_delimiter: the composite key's delimiter, or ``None``
    :ivar key_misfits: sampled keys that do not fit the key's shape
    :ivar key_example: one sampled key (its repr)
    :ivar columns: row-key columns first, then one per cell
    :ivar rows_sampled: rows read
    :ivar regions_sampled: regions the rows were read from, and ``regions`` the table has
    :ivar skipped: cells no schema can name (a qualifier that is not UTF-8 text), as reprs
    """

    name: str
    hbase_table: str
    family: str
    row_key: tuple[str, ...]
    row_key_codec: str
    row_key_delimiter: str | None
    key_misfits: int
    key_example: str
    columns: tuple[InferredColumn, ...]
    rows_sampled: int
    regions_sampled: int
    regions: int
    skipped: tuple[str, ...] = ()


def infer_schema(
    store: Store, hbase_table: str, sample: int = 1000, name: str | None = None
) -> InferredSchema:
    """Sample an existing table and guess a draft schema for it.

    The sample is ``sample`` rows spread over the table's regions (``sample / regions`` from
    each, a short region's shortfall carried over to the next), so a pre-split table is
    sampled across its key space rather than only at its start.

    :param store: the store holding the table
    :param hbase_table: the table to sample (``namespace:table`` on HBase)
    :param sample: how many rows to read, at least 1
    :param name: the table's name in the draft; by default made from ``hbase_table``
    :return: the :class:`InferredSchema`; print it with :func:`to_toml`
    :raises ArgumentError: for a malformed argument (an empty table name, ``sample < 1``,
        a ``name`` that is not a valid table name)
    :raises StoreError: when the table does not exist, or the store fails
    :raises SchemaError: when the table has no rows to guess from
    """
    if not isinstance(hbase_table, str) or not hbase_table:
        raise ArgumentError(f"infer_schema: expected a table name, got {hbase_table!r}")
    if not isinstance(sample, int) or isinstance(sample, bool) or sample < 1:
        raise ArgumentError(f"infer_schema: sample must be an int >= 1, got {sample!r}")
    if name is None:
        name = _identifier(hbase_table.rpartition(":")[2], "t")
    elif not isinstance(name, str) or not _NAME.match(name):
        raise ArgumentError(
            f"infer_schema: invalid table name {name!r} (a letter, then letters, digits or '_')"
        )
    if not store.table_exists(hbase_table):
        raise StoreError(
            f"cannot infer a schema: table {hbase_table!r} does not exist in {store.url}"
        )
    rows, scanned, regions = _sample(store, hbase_table, sample)
    if not rows:
        raise SchemaError(f"cannot infer a schema of {hbase_table!r}: it has no rows to sample")
    log.info("inferring %s from %d rows of %d/%d regions", hbase_table, len(rows), scanned, regions)
    cells: dict[tuple[bytes, bytes], list[bytes]] = {}
    skipped: set[str] = set()
    for _, row in rows:
        for column, value in row.items():
            family, _, qualifier = column.partition(b":")
            if qualifier == ADOPTED_VERSION_QUALIFIER.encode():
                continue  # culvert_py's own cell, in a table adopted before
            why = _unnameable(family, qualifier)
            if why:
                skipped.add(f"{short_repr(column)}: {why}")
            else:
                cells.setdefault((family, qualifier), []).append(value)
    weight = Counter[str]()
    for (family, _), values in cells.items():
        weight[family.decode()] += len(values)
    default = min(weight, key=lambda f: (-weight[f], f)) if weight else "d"
    codec, delimiter, key_types, key_misfits = _guess_row_key([key for key, _ in rows])
    key_names = ["key"] if len(key_types) == 1 else [f"key_{i + 1}" for i in range(len(key_types))]
    columns = [InferredColumn(k, t, None, None, len(rows)) for k, t in zip(key_names, key_types)]
    taken = set(key_names)
    ordered = sorted(cells, key=lambda fq: (fq[0].decode() != default, fq))
    for family, qualifier in ordered:
        fam, qual = family.decode(), qualifier.decode()
        column = _column_name(fam, qual, taken)
        columns.append(_guess_cell(column, f"{fam}:{qual}", qual, cells[family, qualifier]))
    return InferredSchema(
        name=name,
        hbase_table=hbase_table,
        family=default,
        row_key=tuple(key_names),
        row_key_codec=codec,
        row_key_delimiter=delimiter,
        key_misfits=key_misfits,
        key_example=short_repr(_text(rows[0][0]) or rows[0][0]),
        columns=tuple(columns),
        rows_sampled=len(rows),
        regions_sampled=scanned,
        regions=regions,
        skipped=tuple(sorted(skipped)),
    )


def to_toml(inferred: InferredSchema) -> str:
    """The draft as a schema file in the shape of ``docs/adopted-tables.md``.

    Each column carries a comment with the evidence (``# 998/1000 rows; 2 did not decode
    as int32 (e.g. b'n/a')``) and, where the bytes allow another reading, a hint line.

    :param inferred: what :func:`infer_schema` returned
    :return: TOML text, ending with a newline
    """
    s = inferred
    t = f"tables.{s.name}"
    regions = f"{s.regions_sampled} of {s.regions} regions" if s.regions > 1 else "1 region"
    out = [
        f"# Draft schema of HBase table {s.hbase_table!r}, guessed by `culvert schema infer`",
        f"# from {s.rows_sampled:,} sampled rows ({regions}). Every type and codec is a guess",
        "# from the bytes alone: check each one, rename columns freely (keep `cell`), then",
        "# apply the file.",
        "",
        f"[{t}]",
        "existing = true",
        f"hbase_table = {_toml_string(s.hbase_table)}",
        f"family = {_toml_string(s.family)}",
        f"row_key = [{', '.join(_toml_string(k) for k in s.row_key)}]",
        f"row_key_codec = {_toml_string(s.row_key_codec)}  # {_key_evidence(s)}",
    ]
    if s.row_key_delimiter is not None:
        out.append(f"row_key_delimiter = {_toml_string(s.row_key_delimiter)}")
    out += ["", f"[{t}.columns]"]
    width = max(len(c.name) for c in s.columns)
    for c in s.columns:
        if c.hint:
            out.append(f"# hint: {c.hint}")
        if c.cell is None:
            part = f" part {s.row_key.index(c.name) + 1}" if len(s.row_key) > 1 else ""
            out.append(f"{c.name:<{width}} = {_toml_string(c.type_name)}  # row key{part}")
            continue
        spec = (
            f"{{ type = {_toml_string(c.type_name)}, cell = {_toml_string(c.cell)}, "
            f"codec = {_toml_string(c.codec or '')} }}"
        )
        out.append(f"{c.name:<{width}} = {spec}  # {_evidence(c, s.rows_sampled)}")
    out += [f"# skipped {cell}" for cell in s.skipped]
    return "\n".join(out) + "\n"


# -- sampling ---------------------------------------------------------------------------


def _sample(store: Store, hbase_table: str, sample: int) -> tuple[list, int, int]:
    """``(rows, regions scanned, regions)``: the rows of a spread-out sample."""
    table = store.table(hbase_table)
    regions = store.regions(hbase_table)
    count = min(len(regions), MAX_REGION_SCANS, sample)
    chosen = [regions[i * len(regions) // count] for i in range(count)]
    rows: list = []
    for i, region in enumerate(chosen):
        quota = -(-(sample - len(rows)) // (count - i))  # ceil: a short region's rest moves on
        if quota <= 0:
            break
        rows += table.scan(
            start=region.start or None,
            stop=region.end or None,
            limit=quota,
            batch_size=min(quota, 1000),
        )
    return rows, count, len(regions)


# -- guessing a cell --------------------------------------------------------------------


def _guess_cell(name: str, cell: str, qualifier: str, values: list[bytes]) -> InferredColumn:
    timeish = _hints_time(qualifier)
    looks = Counter[tuple[str, str] | str]()
    nonempty = [v for v in values if v]
    for value in nonempty:
        shapes = _shapes(value, timeish)
        looks.update(shapes)
        if any(s[1].startswith("float") for s in shapes) and value.strip(b"\x00"):
            looks[_NONZERO] += 1
    hint = None
    if not nonempty:
        type_name, codec = "bytes", "raw"
        hint = "every sampled value is empty (a marker cell?)"
    else:
        type_name, codec = next(c for c in _ORDER if _fits(c, looks, len(nonempty)))
        hint = _hint(codec, looks, nonempty, timeish)
    decoder = codec_for(type_name, codec)
    misfits, example, misfit_example = 0, None, None
    for value in values:
        try:
            decoded = decoder.decode(value)
        except EncodingError:
            misfits += 1
            misfit_example = misfit_example or short_repr(value)
            continue
        if example is None and value:
            example = decoded.isoformat() if isinstance(decoded, datetime) else short_repr(decoded)
    return InferredColumn(
        name, type_name, codec, cell, len(values), misfits, example, misfit_example, hint
    )


def _fits(candidate: tuple[str, str], looks: Counter, n: int) -> bool:
    if candidate == ("bytes", "raw"):
        return True
    if candidate[0] == "float" and candidate[1] != "text" and not looks[_NONZERO]:
        return False  # all zeros: as much a long (or int) as a double, and longs are commoner
    return looks[candidate] >= FIT_SHARE * n


def _shapes(value: bytes, timeish: bool) -> list:
    """The candidates ``value`` looks like (besides ``raw``, which everything is)."""
    text = _text(value)
    if text is not None:
        return _text_shapes(text)
    shapes: list = []
    if len(value) == 1 and value[0] in (0x00, 0x01, 0xFF):
        shapes.append(("bool", "bool"))
    elif len(value) == 8:
        (i,), (d,) = struct.unpack(">q", value), struct.unpack(">d", value)
        if timeish and _MILLIS[0] <= i < _MILLIS[1]:
            shapes.append(("datetime", "epoch_millis"))
        if timeish and _SECONDS[0] <= i < _SECONDS[1]:
            shapes.append(("datetime", "epoch_seconds"))
        # A double of a "small" exponent is a long of at least 2**61 (and no long below
        # 2**60 in magnitude reads as one), so the two readings barely overlap.
        if d == 0 or 2.0**-64 <= abs(d) <= 2.0**64:
            shapes.append(("float", "float64"))
        shapes.append(("int", "int64"))
    elif len(value) == 4:
        (f,) = struct.unpack(">f", value)
        if f == 0 or 2.0**-32 <= abs(f) <= 2.0**32:
            # The float32 window overlaps ints of about 8e8..1.3e9, so a float32 also needs
            # a short decimal form (19.99, 0.5), as values people and programs write have.
            shapes.append(("float", "float32") if _short_float32(value, f) else _FLOAT32_WINDOW)
        shapes.append(("int", "int32"))
    elif len(value) == 2:
        shapes.append(("int", "int16"))
    return shapes


def _text_shapes(text: str) -> list:
    shapes: list = []
    if text.lower() in ("true", "false"):
        shapes.append(("bool", "text"))
    if _INT_TEXT.fullmatch(text) and -(2**63) <= int(text) < 2**63:
        shapes.append(("int", "text"))
    if _FLOAT_TEXT.fullmatch(text):
        shapes.append(("float", "text"))
    if _ISO_TEXT.fullmatch(text) and _iso(text):
        shapes.append(("datetime", "iso8601"))
    shapes.append(("str", "utf8"))
    return shapes


def _hint(codec: str, looks: Counter, values: list[bytes], timeish: bool) -> str | None:
    n = len(values)
    if codec == "int64" and not timeish:
        millis = sum(
            _MILLIS[0] <= struct.unpack(">q", v)[0] < _MILLIS[1] for v in values if len(v) == 8
        )
        if millis >= FIT_SHARE * n:
            return (
                "the values look like epoch milliseconds (2000..2100); if they are, "
                'type = "datetime", codec = "epoch_millis"'
            )
    if codec == "int32" and looks[_FLOAT32_WINDOW] + looks["float", "float32"] >= FIT_SHARE * n:
        return 'the values also read as float32 numbers; if so, type = "float", codec = "float32"'
    if codec == "utf8" and looks["int", "text"] < FIT_SHARE * n:
        digits = sum(bool(re.fullmatch(rb"[0-9]+", v)) for v in values)
        if digits >= FIT_SHARE * n:
            return "decimal digits with leading zeros (codes, not numbers?): kept as str"
    return None


def _short_float32(value: bytes, f: float) -> bool:
    return any(struct.pack(">f", float(f"{f:.{p}g}")) == value for p in range(1, 7))


def _iso(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _text(value: bytes) -> str | None:
    """``value`` as text, or ``None`` when it is not UTF-8 or holds control characters
    (a Java int's zero bytes are valid UTF-8, but no one writes them as text)."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _CONTROL.search(text) else text


def _hints_time(qualifier: str) -> bool:
    words = [w.lower() for w in _WORDS.findall(qualifier)]
    return any(w in _TIME_WORDS or w.endswith(("time", "date", "stamp")) for w in words)


# -- guessing the row key ---------------------------------------------------------------


def _guess_row_key(keys: list[bytes]) -> tuple[str, str | None, list[str], int]:
    """``(codec, delimiter, part types, misfits)`` for the sampled row keys."""
    n = len(keys)
    texts = [t for t in (_text(k) for k in keys) if t is not None]
    if len(texts) >= FIT_SHARE * n:
        for delimiter in _DELIMITERS:
            parts = _composite(texts, delimiter, n)
            if parts:
                splits = [t.split(delimiter) for t in texts]
                fitting = [p for p in splits if len(p) == parts]
                types = [_key_part_type(p[i] for p in fitting) for i in range(parts)]
                return "utf8", delimiter, types, n - len(fitting)
        return "utf8", None, [_key_part_type(texts)], n - len(texts)
    for codec, size in (("int64", 8), ("int32", 4)):
        fits = sum(len(k) == size for k in keys)
        if fits >= FIT_SHARE * n:
            return codec, None, ["int"], n - fits
    return "raw", None, ["bytes"], 0


def _key_part_type(parts) -> str:
    """``int`` when every part is a decimal integer as Java's ``Long.toString`` writes it
    (a key that fails to parse is a row no query can address), else ``str``."""
    ok = all(_INT_TEXT.fullmatch(p) and -(2**63) <= int(p) < 2**63 for p in parts)
    return "int" if ok else "str"


def _composite(texts: list[str], delimiter: str, n: int) -> int:
    """The number of parts the keys split into at ``delimiter``; 0 when they do not."""
    splits = [t.split(delimiter) for t in texts]
    counts = Counter(len(s) for s in splits if all(s))
    if not counts:
        return 0
    parts, fits = counts.most_common(1)[0]
    if parts < 2 or fits < FIT_SHARE * n:
        return 0
    if delimiter in _STRONG_DELIMITERS:
        return parts
    if any(_UUID_TEXT.fullmatch(t) or _ISO_TEXT.fullmatch(t) for t in texts):
        return 0
    varying = sum(len({s[i] for s in splits if len(s) == parts}) > 1 for i in range(parts))
    return parts if varying >= 2 else 0


# -- names and TOML ---------------------------------------------------------------------


def _unnameable(family: bytes, qualifier: bytes) -> str | None:
    """Why a schema cannot name the cell ``family:qualifier``, or ``None`` when it can."""
    try:
        if FAMILY.match(family.decode("utf-8")) and qualifier.decode("utf-8"):
            return None
    except UnicodeDecodeError:
        return "a qualifier that is not UTF-8 text cannot be named"
    return "a schema names a cell as family:qualifier, both non-empty text"


def _identifier(text: str, fallback: str) -> str:
    """``text`` as a schema name: accents dropped, other characters to ``_``."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^A-Za-z0-9]+", "_", plain).strip("_")
    if not name:
        return fallback
    return name if name[0].isalpha() else f"{fallback}_{name}"


def _column_name(family: str, qualifier: str, taken: set[str]) -> str:
    """A unique name for a cell: the qualifier's, else prefixed with its family, else
    numbered (``email``, ``info_email``, ``info_email_2``)."""
    base = _identifier(qualifier, "col")
    prefixed = _identifier(f"{family}_{base}", "col")
    numbered = (f"{prefixed}_{i}" for i in itertools.count(2))
    name = next(c for c in itertools.chain((base, prefixed), numbered) if c not in taken)
    taken.add(name)
    return name


def _evidence(c: InferredColumn, rows: int) -> str:
    text = f"{c.rows:,}/{rows:,} rows"
    if c.misfits:
        text += f"; {c.misfits:,} did not decode as {c.codec} (e.g. {c.misfit_example})"
    if c.example is not None:
        text += f"; e.g. {c.example}"
    return text


def _key_evidence(s: InferredSchema) -> str:
    shape = {
        "utf8": "UTF-8 text",
        "raw": "bytes",
        "int32": "4 bytes (Bytes.toBytes(int))",
        "int64": "8 bytes (Bytes.toBytes(long))",
    }[s.row_key_codec]
    if s.row_key_delimiter is not None:
        shape += f" of {len(s.row_key)} parts split by {s.row_key_delimiter!r}"
    fits = s.rows_sampled - s.key_misfits
    return f"{fits:,}/{s.rows_sampled:,} keys {shape}; e.g. {s.key_example}"


def _toml_string(text: str) -> str:
    """``text`` as a TOML basic string."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", escaped) + '"'
