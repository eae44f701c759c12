"""Drafting an adopted-table schema from a sample of an existing table's cells.

What a new user of an existing HBase table runs first (``culvert schema infer TABLE``):
:func:`infer_schema` samples rows across the table's regions and guesses per cell a column
type and codec (``docs/adopted-tables.md``), and the row key's shape; :func:`to_toml` prints
the draft to check and edit. A specific codec is proposed only when at least
:data:`FIT_SHARE` of the values look like it (a few junk cells are tolerated, and reported),
else a more general one (binary ``int64``, text ``utf8``, anything ``raw``): the bytes alone
cannot tell everything apart, so the draft shows its evidence per column::

    print(to_toml(infer_schema(store, "users", sample=1000)))
"""

from __future__ import annotations

import itertools
import json
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
#: No leading zeros ("007" is a code, not 7); at most 18 digits, so always in int64's range.
_INT_TEXT = re.compile(r"[+-]?(0|[1-9][0-9]{0,17})")
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
_KEY_SHAPES = {"utf8": "UTF-8 text", "raw": "bytes", "int32": "4 bytes", "int64": "8 bytes"}

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
_DIGITS = ("str", "digits")  # decimal digits, but with leading zeros
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
    :ivar left_out: what the draft does not name, and why: cells no schema can name (not
        UTF-8 text), families with no cells in the sample
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
    left_out: tuple[str, ...] = ()


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
    cells, left_out = _collect(rows)
    weight = Counter(family for (family, _), values in cells.items() for _ in values)
    families = store.families(hbase_table)
    left_out += [f"family {f!r}: no cells in the sample" for f in families if f not in weight]
    # The most cells wins, ties go to the first by name; a table of no cells keeps its own.
    default = max(sorted(weight), key=weight.__getitem__, default=(families or ["d"])[0])
    codec, delimiter, key_types, key_misfits, key = _guess_row_key([key for key, _ in rows])
    numbered = len(key_types) > 1
    columns = [
        InferredColumn(f"key_{i}" if numbered else "key", t, None, None, len(rows))
        for i, t in enumerate(key_types, 1)
    ]
    key_names = tuple(c.name for c in columns)
    taken = set(key_names)
    for family, qualifier in sorted(cells, key=lambda fq: (fq[0] != default, fq)):
        column = _column_name(family, qualifier, taken)
        values = cells[family, qualifier]
        columns.append(_guess_cell(column, f"{family}:{qualifier}", qualifier, values))
    return InferredSchema(
        name=name,
        hbase_table=hbase_table,
        family=default,
        row_key=key_names,
        row_key_codec=codec,
        row_key_delimiter=delimiter,
        key_misfits=key_misfits,
        key_example=short_repr(key),
        columns=tuple(columns),
        rows_sampled=len(rows),
        regions_sampled=scanned,
        regions=regions,
        left_out=tuple(left_out),
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
        f"# Draft schema of HBase table {s.hbase_table!r} from {s.rows_sampled:,} sampled rows"
        f" ({regions}).",
        "# Types and codecs are guesses from the bytes: check each one, rename columns freely.",
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
    out += [f"# left out: {what}" for what in s.left_out]
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


def _collect(rows: list) -> tuple[dict[tuple[str, str], list[bytes]], list[str]]:
    """``({(family, qualifier): values}, skipped cells)`` of the sampled rows."""
    cells: dict[tuple[str, str], list[bytes]] = {}
    skipped: set[str] = set()
    for _, row in rows:
        for column, value in row.items():
            try:
                family, _, qualifier = column.decode("utf-8").partition(":")
            except UnicodeDecodeError:
                family = qualifier = ""
            if qualifier == ADOPTED_VERSION_QUALIFIER:
                continue  # culvert_py's own cell, in a table adopted before
            if FAMILY.match(family) and qualifier:
                cells.setdefault((family, qualifier), []).append(value)
            else:
                skipped.add(f"{short_repr(column)}: a schema names only UTF-8 family:qualifier")
    return cells, sorted(skipped)


# -- guessing a cell --------------------------------------------------------------------


def _guess_cell(name: str, cell: str, qualifier: str, values: list[bytes]) -> InferredColumn:
    looks = Counter[tuple[str, str] | str]()
    nonempty = [v for v in values if v]
    for value in nonempty:
        shapes = _shapes(value)
        looks.update(shapes)
        if any(s[1].startswith("float") for s in shapes) and value.strip(b"\x00"):
            looks[_NONZERO] += 1
    if not nonempty:
        type_name, codec = "bytes", "raw"
        hint = "every sampled value is empty (a marker cell?)"
    else:
        timeish = _hints_time(qualifier)
        type_name, codec = next(c for c in _ORDER if _fits(c, looks, len(nonempty), timeish))
        hint = _hint(codec, looks, len(nonempty))
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


def _fits(candidate: tuple[str, str], looks: Counter, n: int, timeish: bool) -> bool:
    if candidate == ("bytes", "raw"):
        return True
    if candidate[1].startswith("epoch") and not timeish:
        return False  # conservative: a long in the range could be anything
    if candidate[0] == "float" and candidate[1] != "text" and not looks[_NONZERO]:
        return False  # all zeros: as much a long (or int) as a double, and longs are commoner
    return looks[candidate] >= FIT_SHARE * n


def _shapes(value: bytes) -> list:
    """The candidates ``value`` looks like (besides ``raw``, which everything is)."""
    text = _text(value)
    if text is not None:
        return _text_shapes(text)
    shapes: list = []
    if len(value) == 1 and value[0] in (0x00, 0x01, 0xFF):
        shapes.append(("bool", "bool"))
    elif len(value) == 8:
        (i,), (d,) = struct.unpack(">q", value), struct.unpack(">d", value)
        if _MILLIS[0] <= i < _MILLIS[1]:
            shapes.append(("datetime", "epoch_millis"))
        if _SECONDS[0] <= i < _SECONDS[1]:
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
    if _INT_TEXT.fullmatch(text):
        shapes.append(("int", "text"))
    elif text.isascii() and text.isdigit():
        shapes.append(_DIGITS)
    if _FLOAT_TEXT.fullmatch(text):
        shapes.append(("float", "text"))
    if _ISO_TEXT.fullmatch(text) and _decodes(("datetime", "iso8601"), text.encode()):
        shapes.append(("datetime", "iso8601"))
    shapes.append(("str", "utf8"))
    return shapes


def _hint(codec: str, looks: Counter, n: int) -> str | None:
    """Another reading of the values than ``codec``, for the user to choose."""
    if codec == "int64" and looks["datetime", "epoch_millis"] >= FIT_SHARE * n:
        return (
            "the values look like epoch milliseconds (2000..2100); if they are, "
            'type = "datetime", codec = "epoch_millis"'
        )
    if codec == "int32" and looks[_FLOAT32_WINDOW] + looks["float", "float32"] >= FIT_SHARE * n:
        return 'the values also read as float32 numbers; if so, type = "float", codec = "float32"'
    if codec == "utf8" and looks[_DIGITS] >= FIT_SHARE * n:
        return "decimal digits with leading zeros (codes, not numbers?): kept as str"
    return None


def _short_float32(value: bytes, f: float) -> bool:
    return any(struct.pack(">f", float(f"{f:.{p}g}")) == value for p in range(1, 7))


def _decodes(candidate: tuple[str, str], value: bytes) -> bool:
    try:
        codec_for(*candidate).decode(value)
    except EncodingError:
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


def _guess_row_key(keys: list[bytes]) -> tuple[str, str | None, list[str], int, object]:
    """``(codec, delimiter, part types, misfits, an example)`` for the sampled row keys."""
    n = len(keys)
    texts = [t for t in (_text(k) for k in keys) if t is not None]
    if len(texts) >= FIT_SHARE * n:
        for delimiter in _DELIMITERS:
            fitting = _composite(texts, delimiter, n)
            if fitting:
                types = [_key_part_type(p[i] for p in fitting) for i in range(len(fitting[0]))]
                return "utf8", delimiter, types, n - len(fitting), delimiter.join(fitting[0])
        return "utf8", None, [_key_part_type(texts)], n - len(texts), texts[0]
    for codec, size in (("int64", 8), ("int32", 4)):
        fitting_keys = [k for k in keys if len(k) == size]
        if len(fitting_keys) >= FIT_SHARE * n:
            example = int.from_bytes(fitting_keys[0], "big", signed=True)
            return codec, None, ["int"], n - len(fitting_keys), example
    return "raw", None, ["bytes"], 0, keys[0]


def _key_part_type(parts) -> str:
    """``int`` when every part is a decimal integer as Java's ``Long.toString`` writes it
    (a key that fails to parse is a row no query can address), else ``str``."""
    return "int" if all(_INT_TEXT.fullmatch(p) for p in parts) else "str"


def _composite(texts: list[str], delimiter: str, n: int) -> list[list[str]]:
    """The keys that split at ``delimiter`` into the commonest number of parts (at least
    two, none empty), when they are nearly all; else ``[]``."""
    splits = [s for s in (t.split(delimiter) for t in texts) if all(s)]
    parts, fits = Counter(len(s) for s in splits).most_common(1)[0] if splits else (0, 0)
    if parts < 2 or fits < FIT_SHARE * n:
        return []
    fitting = [s for s in splits if len(s) == parts]
    if delimiter in _STRONG_DELIMITERS:
        return fitting
    if any(_UUID_TEXT.fullmatch(t) or _ISO_TEXT.fullmatch(t) for t in texts):
        return []
    varying = sum(len({s[i] for s in fitting}) > 1 for i in range(parts))
    return fitting if varying >= 2 else []


# -- names and TOML ---------------------------------------------------------------------


def _identifier(text: str, fallback: str) -> str:
    """``text`` as a schema name: accents dropped, other characters to ``_``."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^A-Za-z0-9]+", "_", plain).strip("_")
    return name if name[:1].isalpha() else f"{fallback}_{name}".rstrip("_")


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
    shape = _KEY_SHAPES[s.row_key_codec]
    if s.row_key_delimiter is not None:
        shape += f" of {len(s.row_key)} parts split by {s.row_key_delimiter!r}"
    fits = s.rows_sampled - s.key_misfits
    return f"{fits:,}/{s.rows_sampled:,} keys {shape}; e.g. {s.key_example}"


def _toml_string(text: str) -> str:
    # JSON's escapes are TOML's, but for DEL, which TOML also wants escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
