"""Filter pushdown: predicates as HBase filter-language strings.

Three layers of evidence that a pushed filter keeps every matching row and that no value can
break out of its literal:

1. the exact bytes generated for small predicates (shape, quoting, completeness flags);
2. an independent reader of the filter language that follows HBase's ``ParseFilter`` step by
   step (quote parity, doubled quotes, keyword detection, operator stack), plus a model of
   ``SingleColumnValueFilter`` on encoded cells: for random predicates and tricky values the
   model keeps a superset of the brute-force matches, exactly them when ``complete``;
3. the same comparison against the real HBase (``-m hbase``), where the region servers do
   the parsing and the filtering.
"""

from __future__ import annotations

import math
import struct
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from culvert_py.encoding import encode_str_prefix, encode_value
from culvert_py.errors import QueryError
from culvert_py.predicate import (
    FALSE,
    TRUE,
    And,
    Between,
    Compare,
    Contains,
    Expr,
    IsNull,
    Not,
    Or,
    Prefix,
    bind,
    col,
    matches,
    normalize,
)
from culvert_py.query.hbase_filter import MATCH_NOTHING, to_filter_string
from culvert_py.schema import TableDef

# --------------------------------------------------------------------------- the data

COLUMNS = {
    "id": "str",
    "s": "str",
    "b": "bytes",
    "i": "int",
    "f": "float",
    "t": "datetime",
    "o": "bool",
}
TABLE = TableDef("probe", "d", ("id",), COLUMNS)


def _float_of_bits(bits: int) -> float:
    return struct.unpack(">d", bits.to_bytes(8, "big"))[0]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Values chosen to contain every byte the filter language treats specially, once encoded:
# quotes (0x27), parentheses, commas, colons, spaces, keywords, NUL and 0xFF.
POOLS: dict[str, list] = {
    "s": [
        "",
        "'",
        "''",
        "')",
        "'')",
        "(",
        ")",
        "()",
        "AND",
        "OR",
        "SKIP",
        "WHILE",
        " AND ",
        ") OR (",
        "binary:",
        "binaryprefix:",
        ",",
        ", ",
        ":",
        " ",
        "\t",
        "a b",
        "x') OR (PrefixFilter('",
        "') OR PageFilter(0) OR ('",
        "')) OR ((",
        "SingleColumnValueFilter('d', 's', =, 'binary:', true, true)",
        "é",
        "日本語",
        "😀",
        "\x00",
        "a\x00",
        "a\x00b",
        "\xff",
        "a",
        "ab",
        "b",
    ],
    "b": [
        b"",
        b"\x00",
        b"\x00\x00",
        b"\x00\x01",
        b"\xff",
        b"\xff\xff",
        b"\x00'\xff",
        b"'",
        b"''",
        b"')",
        b"(",
        b"AND",
        b" OR ",
        b",:",
        b"\x80",
        b"\xc3\x28",  # not UTF-8
        b"x') OR (PrefixFilter('",
    ],
    "i": [
        -(2**63),
        -(2**63) + 39,
        -1000,
        -1,
        0,
        1,
        32,
        39,
        40,
        41,
        44,
        58,
        0x2727,
        0x27272727,
        2**62,
        2**63 - 1,
    ],
    "f": [
        -math.inf,
        -1e308,
        -2.5,
        -1.0,
        -5e-324,
        0.0,
        5e-324,
        1.0,
        2.5,
        _float_of_bits(0x4027272727272727),
        _float_of_bits(0xC027272727272727),
        1e308,
        math.inf,
        math.nan,
    ],
    "t": [
        datetime.min.replace(tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        _EPOCH,
        _EPOCH + timedelta(microseconds=39),
        datetime(2024, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
        datetime(2024, 3, 1, 10, 0, tzinfo=UTC),  # the same instant as the one above
        datetime(2024, 3, 1, 10, 0, 0, 1, tzinfo=UTC),
        datetime.max.replace(tzinfo=UTC),
    ],
    "o": [False, True],
}
_LONGEST = max(len(pool) for pool in POOLS.values())


def _build_rows() -> dict[bytes, dict[str, object]]:
    rows: dict[bytes, dict[str, object]] = {}
    for k in range(2 * _LONGEST + 1):
        row: dict[str, object] = {"id": f"r{k:03d}"}
        for ci, (column, pool) in enumerate(POOLS.items()):
            # The first pass shows every value; later rows mix in NULLs (absent cells).
            if k < _LONGEST or (k + ci) % 4:
                row[column] = pool[(k + 5 * ci) % len(pool)]
        rows[f"r{k:03d}".encode()] = row
    rows[b"r-only-id"] = {"id": "r-only-id"}
    return rows


ROWS = _build_rows()
CELLS = {
    key: {f"d:{c}".encode(): encode_value(v, COLUMNS[c]) for c, v in row.items()}
    for key, row in ROWS.items()
}


def _expected(expr: Expr) -> set[bytes]:
    return {key for key, row in ROWS.items() if matches(expr, row)}


# --------------------------------------------------------------------------- a ParseFilter reader

_QUOTE, _LPAREN, _RPAREN = ord("'"), ord("("), ord(")")
_UNARY = ("SKIP", "WHILE")
_PRECEDENCE = {"SKIP": 1, "WHILE": 1, "AND": 2, "OR": 3}
_COMPARE_OPS = {b"<", b"<=", b">", b">=", b"!=", b"="}


class FilterSyntaxError(ValueError):
    """The reader refused the string, as ParseFilter would (IllegalArgumentException)."""


def _quote_closes(data: bytes, i: int) -> bool:
    # A quote is a delimiter unless another quote follows it (ParseFilter.isQuoteUnescaped).
    return i == len(data) - 1 or data[i + 1] != _QUOTE


def _keyword_at(data: bytes, i: int, word: str) -> bool:
    n = len(word)
    if data[i : i + n] != word.encode() or i + n >= len(data):
        return False
    before_ok = b" )" + (b"(" if word in _UNARY else b"")
    if i == 0:
        if word not in _UNARY:
            return False
    elif data[i - 1] not in before_ok:
        return False
    return data[i + n] in b" ("


def _simple_expression(data: bytes, start: int) -> bytes:
    """``Name(args)`` from ``start``: up to the first ')' outside quotes, by quote parity."""
    quotes = 0
    i = start
    while i < len(data):
        if data[i] == _QUOTE:
            if _quote_closes(data, i):
                quotes += 1
            else:
                i += 1
        if data[i] == _RPAREN and quotes % 2 == 0:
            return data[start : i + 1]
        i += 1
    raise FilterSyntaxError("Incorrect Filter String")


def _unescape(literal: bytes) -> bytes:
    out = bytearray()
    k = 0
    while k < len(literal):
        if literal[k] == _QUOTE and k + 1 < len(literal) and literal[k + 1] == _QUOTE:
            k += 1
        out.append(literal[k])
        k += 1
    return bytes(out)


def _arguments(expr: bytes) -> list[tuple[bool, bytes]]:
    """``(quoted, value)`` per argument, read as ParseFilter.getFilterArguments reads them."""
    i = expr.index(b"(") + 1
    args: list[tuple[bool, bytes]] = []
    while i < len(expr):
        if expr[i] in b" ,)":
            i += 1
            continue
        if expr[i] == _QUOTE:
            j = i + 1
            while j < len(expr):
                if expr[j] == _QUOTE:
                    if _quote_closes(expr, j):
                        args.append((True, _unescape(expr[i + 1 : j])))
                        i = j + 1  # ParseFilter's loop then steps over the next byte too
                        break
                    j += 1
                elif j == len(expr) - 1:
                    raise FilterSyntaxError("Incorrect argument list")
                j += 1
        else:
            j = i
            while True:
                if expr[j] in b" ,)":
                    args.append((False, expr[i:j]))
                    i = j
                    break
                if j == len(expr) - 1:
                    raise FilterSyntaxError("Incorrect argument list")
                j += 1
        i += 1
    return args


def _boolean(arg: tuple[bool, bytes]) -> bool:
    quoted, raw = arg
    if quoted or raw.lower() not in (b"true", b"false"):
        raise FilterSyntaxError(f"Incorrect Boolean Expression {raw!r}")
    return raw.lower() == b"true"


def _simple_filter(expr: bytes) -> tuple:
    end = next((k for k, byte in enumerate(expr) if byte in b"( "), 0)
    if end == 0:
        raise FilterSyntaxError("Incorrect Filter Name")
    name, args = expr[:end].decode("latin-1"), _arguments(expr)
    if name == "SingleColumnValueFilter":
        if len(args) != 6 or not all(args[k][0] for k in (0, 1, 3)):
            raise FilterSyntaxError(f"SingleColumnValueFilter arguments {args!r}")
        if args[2][0] or args[2][1] not in _COMPARE_OPS:
            raise FilterSyntaxError(f"Invalid compare operator {args[2][1]!r}")
        kind, colon, value = args[3][1].partition(b":")
        if not colon:
            raise FilterSyntaxError("Incorrect comparator")
        op = args[2][1].decode()
        return (
            "SCVF",
            args[0][1],
            args[1][1],
            op,
            kind,
            value,
            _boolean(args[4]),
            _boolean(args[5]),
        )
    if name == "PageFilter" and len(args) == 1 and not args[0][0]:
        return ("PageFilter", int(args[0][1]))
    return ("other", name, args)


def read_filter(data: bytes) -> tuple:
    """Parse a filter string the way HBase's ParseFilter.parseFilterString does.

    Returns a tree of ``("AND"|"OR", [children])``, ``("SKIP"|"WHILE", [child])``,
    ``("SCVF", family, qualifier, op, comparator type, comparator value, filterIfMissing,
    latestVersionOnly)``, ``("PageFilter", n)`` and ``("other", name, args)``.
    """
    ops: list[str] = []
    out: list[tuple] = []

    def pop_arguments() -> tuple:
        top = ops[-1]
        try:
            if top in ("AND", "OR"):
                children: list[tuple] = []
                while ops and ops[-1] == top:
                    children.insert(0, out.pop())
                    ops.pop()
                children.insert(0, out.pop())
                return (top, children)
            child = out.pop()
            ops.pop()
            return child if top == "(" else (top, [child])
        except IndexError:
            raise FilterSyntaxError(f"Incorrect input string around {top}") from None

    def reduce(operator: str) -> None:
        while ops and ops[-1] != "(" and _PRECEDENCE[ops[-1]] < _PRECEDENCE[operator]:
            out.append(pop_arguments())

    i = 0
    while i < len(data):
        byte = data[i]
        keyword = next((w for w in ("OR", "AND", "SKIP", "WHILE") if _keyword_at(data, i, w)), None)
        if byte == _LPAREN:
            ops.append("(")
        elif byte in b" \t":
            pass
        elif keyword is not None:
            i += len(keyword) - 1
            reduce(keyword)
            ops.append(keyword)
        elif byte == _RPAREN:
            if not ops:
                raise FilterSyntaxError("Mismatched parenthesis")
            top = ops[-1]
            if top == "(":
                ops.pop()
            else:
                while top != "(":
                    out.append(pop_arguments())
                    if not ops:
                        raise FilterSyntaxError("Mismatched parenthesis")
                    top = ops.pop()
        else:
            expr = _simple_expression(data, i)
            i += len(expr) - 1
            out.append(_simple_filter(expr))
        i += 1
    while ops:
        out.append(pop_arguments())
    if len(out) != 1:
        raise FilterSyntaxError("Incorrect Filter String")
    return out[0]


def scvf(column: str, op: str, kind: bytes, value: bytes) -> tuple:
    return ("SCVF", b"d", column.encode(), op, kind, value, True, True)


# --------------------------------------------------------------------------- a SCVF model

_KEEP: dict[str, Callable[[int], bool]] = {
    "=": lambda c: c == 0,
    "!=": lambda c: c != 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


def model_keeps(tree: tuple, cells: Mapping[bytes, bytes]) -> bool:
    """Whether HBase keeps a row with ``cells`` under the filter ``tree`` (see read_filter)."""
    match tree:
        case ("AND", children):
            return all(model_keeps(c, cells) for c in children)
        case ("OR", children):
            return any(model_keeps(c, cells) for c in children)
        case ("PageFilter", 0):
            return False
        case ("SCVF", family, qualifier, op, kind, value, if_missing, _):
            cell = cells.get(family + b":" + qualifier)
            if cell is None:
                return not if_missing
            # BinaryPrefixComparator compares the prefix with the cell's first bytes only.
            seen = cell[: len(value)] if kind == b"binaryprefix" else cell
            assert kind in (b"binary", b"binaryprefix"), kind
            return _KEEP[op]((seen > value) - (seen < value))
    raise AssertionError(f"the model does not know {tree!r}")


def model_rows(flt: bytes | None) -> set[bytes]:
    if flt is None:
        return set(ROWS)
    tree = read_filter(flt)
    return {key for key, cells in CELLS.items() if model_keeps(tree, cells)}


def check_pushdown(expr: Expr, kept: Callable[[bytes | None], set[bytes]]) -> None:
    """The rows ``kept`` for the pushed filter of ``expr`` include every matching row, and
    are exactly the matching rows when the filter says it is complete."""
    flt, complete = to_filter_string(expr, TABLE)
    got, want = kept(flt), _expected(expr)
    assert want <= got, f"{expr}: filter {flt!r} dropped matching rows {sorted(want - got)}"
    if complete:
        assert got == want, f"{expr}: complete filter {flt!r} kept extra {sorted(got - want)}"


# --------------------------------------------------------------------------- predicates

_RANDOM: dict[str, st.SearchStrategy] = {
    "str": st.text(max_size=6),
    "bytes": st.binary(max_size=6),
    "int": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(),
    "datetime": st.builds(
        lambda naive, tz: naive.replace(tzinfo=tz),
        st.datetimes(datetime(2, 1, 1), datetime(9998, 12, 31)),
        st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))]),
    ),
    "bool": st.booleans(),
}


def _values(column: str) -> st.SearchStrategy:
    pool = POOLS.get(column, [row["id"] for row in ROWS.values()])
    return st.one_of(st.sampled_from(pool), _RANDOM[COLUMNS[column]])


def _leaf_for(column: str) -> st.SearchStrategy:
    values = _values(column)
    leaves = [
        st.builds(Compare, st.just(column), st.sampled_from(list(_KEEP)), values),
        st.builds(Between, st.just(column), values, values),
        st.lists(values, min_size=1, max_size=3).map(col(column).isin),
        st.builds(IsNull, st.just(column), st.booleans()),
    ]
    if COLUMNS[column] == "str":
        prefixes = st.one_of(
            st.sampled_from([p[:n] for p in POOLS["s"] for n in range(len(p) + 1)]),
            st.text(max_size=2),
        )
        leaves.append(st.builds(Prefix, st.just(column), prefixes))
        leaves.append(st.builds(Contains, st.just(column), st.sampled_from(["a", "b", "and"])))
    return st.one_of(leaves)


_LEAVES = st.sampled_from(list(COLUMNS)).flatmap(_leaf_for)
PREDICATES = st.recursive(
    _LEAVES,
    lambda kids: st.one_of(
        st.lists(kids, min_size=2, max_size=3).map(lambda c: And(tuple(c))),
        st.lists(kids, min_size=2, max_size=3).map(lambda c: Or(tuple(c))),
        kids.map(Not),
    ),
    max_leaves=6,
).map(lambda e: normalize(bind(e, COLUMNS)))


# --------------------------------------------------------------------------- 1. generated bytes


def _enc(value: object, type_name: str) -> bytes:
    return encode_value(value, type_name)


@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">="])
def test_comparison_is_one_single_column_value_filter_on_the_encoded_value(op):
    flt, complete = to_filter_string(Compare("i", op, 5), TABLE)
    assert complete
    expected = b"SingleColumnValueFilter('d', 'i', %s, 'binary:%s', true, true)"
    assert flt == expected % (op.encode(), _enc(5, "int"))


def test_quotes_in_encoded_values_are_doubled_and_nothing_else_changes():
    flt, _ = to_filter_string(Compare("b", "=", b"\x00'\xff''"), TABLE)
    encoded = _enc(b"\x00'\xff''", "bytes")
    assert flt == b"SingleColumnValueFilter('d', 'b', =, 'binary:%s', true, true)" % (
        encoded.replace(b"'", b"''")
    )
    assert b"\x00" in flt and b"\xff" in flt  # raw bytes, not an escape syntax


def test_int_whose_encoding_ends_in_a_quote_is_escaped():
    flt, _ = to_filter_string(Compare("i", "=", 39), TABLE)
    assert _enc(39, "int").endswith(b"'")
    assert flt.endswith(b"''', true, true)")


def test_the_result_is_bytes_because_encoded_values_are_not_text():
    flt, _ = to_filter_string(Compare("f", "<", -2.5), TABLE)
    assert isinstance(flt, bytes)
    with pytest.raises(UnicodeDecodeError):
        flt.decode("utf-8")


def test_between_is_two_bounds_anded():
    flt, complete = to_filter_string(Between("i", 1, 9), TABLE)
    assert complete
    assert read_filter(flt) == (
        "AND",
        [
            scvf("i", ">=", b"binary", _enc(1, "int")),
            scvf("i", "<=", b"binary", _enc(9, "int")),
        ],
    )


def test_like_prefix_uses_a_binary_prefix_of_the_encoded_prefix():
    flt, complete = to_filter_string(Prefix("s", "a'\x00"), TABLE)
    assert complete
    assert read_filter(flt) == scvf("s", "=", b"binaryprefix", encode_str_prefix("a'\x00"))


def test_is_not_null_keeps_rows_having_the_cell():
    flt, complete = to_filter_string(IsNull("o", negated=True), TABLE)
    assert complete
    assert read_filter(flt) == scvf("o", "=", b"binaryprefix", b"")


@pytest.mark.parametrize(
    "expr",
    [IsNull("s"), Contains("s", "and"), Not(Prefix("s", "a")), Not(Contains("s", "a"))],
    ids=str,
)
def test_leaves_that_cannot_be_pushed_give_no_filter(expr):
    assert to_filter_string(expr, TABLE) == (None, False)


def test_and_pushes_its_pushable_part_and_says_it_is_partial():
    expr = (col("i") > 3) & col("s").contains("and") & (col("o") == True)  # noqa: E712
    flt, complete = to_filter_string(expr, TABLE)
    assert not complete
    assert read_filter(flt) == (
        "AND",
        [
            scvf("i", ">", b"binary", _enc(3, "int")),
            scvf("o", "=", b"binary", _enc(True, "bool")),
        ],
    )


def test_and_of_only_unpushable_parts_gives_no_filter():
    assert to_filter_string(col("s").is_null() & col("s").contains("a"), TABLE) == (None, False)


def test_or_with_an_unpushable_branch_gives_no_filter():
    expr = (col("i") == 1) | col("s").is_null()
    assert to_filter_string(expr, TABLE) == (None, False)


def test_or_of_partial_branches_is_pushed_as_partial():
    expr = ((col("i") == 1) & col("s").contains("a")) | (col("i") == 2)
    flt, complete = to_filter_string(expr, TABLE)
    assert not complete
    assert read_filter(flt) == (
        "OR",
        [scvf("i", "=", b"binary", _enc(1, "int")), scvf("i", "=", b"binary", _enc(2, "int"))],
    )


def test_nested_junctions_are_parenthesised_and_read_back_as_nested():
    expr = ((col("i") == 1) | (col("i") == 2)) & ((col("s") == "OR") | col("b").between(b"(", b")"))
    flt, complete = to_filter_string(expr, TABLE)
    assert complete
    assert read_filter(flt) == (
        "AND",
        [
            (
                "OR",
                [
                    scvf("i", "=", b"binary", _enc(1, "int")),
                    scvf("i", "=", b"binary", _enc(2, "int")),
                ],
            ),
            (
                "OR",
                [
                    scvf("s", "=", b"binary", _enc("OR", "str")),
                    (
                        "AND",
                        [
                            scvf("b", ">=", b"binary", _enc(b"(", "bytes")),
                            scvf("b", "<=", b"binary", _enc(b")", "bytes")),
                        ],
                    ),
                ],
            ),
        ],
    )


def test_true_needs_no_filter_and_false_matches_nothing():
    assert to_filter_string(TRUE, TABLE) == (None, True)
    assert to_filter_string(FALSE, TABLE) == (MATCH_NOTHING, True)
    assert read_filter(MATCH_NOTHING) == ("PageFilter", 0)


def test_predicates_are_normalised_first():
    flt, complete = to_filter_string(~(col("i") < 5), TABLE)
    assert complete
    assert read_filter(flt) == scvf("i", ">=", b"binary", _enc(5, "int"))


def test_int_literal_on_a_float_column_is_encoded_as_the_float():
    flt, _ = to_filter_string(Compare("f", "=", 2), TABLE)
    assert read_filter(flt) == scvf("f", "=", b"binary", _enc(2.0, "float"))


def test_family_and_column_names_are_quoted_too():
    table = TableDef("t", "fam", ("k",), {"k": "str", "AND": "int"})
    flt, _ = to_filter_string(Compare("AND", "=", 1), table)
    assert read_filter(flt) == ("SCVF", b"fam", b"AND", "=", b"binary", _enc(1, "int"), True, True)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (Compare("nope", "=", 1), "unknown column 'nope'"),
        (Compare("i", "=", "x"), "cannot push = 'x' on int column 'i'"),
        (Compare("i", "=", 1.5), "cannot push = 1.5 on int column 'i'"),
        (Prefix("i", "1"), "cannot push LIKE on int column 'i'"),
        ((col("i") == 1) | (col("zz") == 1), "unknown column 'zz'"),
        ((col("zz") == 1) | col("s").is_null(), "unknown column 'zz'"),
    ],
)
def test_columns_and_literals_that_do_not_fit_the_table_are_refused(expr, message):
    with pytest.raises(QueryError, match=message):
        to_filter_string(expr, TABLE)


# --------------------------------------------------------------------------- 2. the reader


def test_the_reader_agrees_with_parse_filter_on_documented_examples():
    # Examples from the HBase reference guide's filter-language chapter.
    assert read_filter(b"PrefixFilter ('Row') AND PageFilter (1)") == (
        "AND",
        [("other", "PrefixFilter", [(True, b"Row")]), ("PageFilter", 1)],
    )
    assert read_filter(b"ValueFilter(=, 'substring:it''s')")[2][1] == (True, b"substring:it's")
    assert read_filter(b"(A('x') OR B('y')) AND C('z')")[0] == "AND"
    with pytest.raises(FilterSyntaxError):
        read_filter(b"A('x'")


@settings(max_examples=500, deadline=None)
@given(value=st.binary(max_size=40))
def test_any_bytes_value_reads_back_as_exactly_one_filter_on_that_value(value):
    flt, complete = to_filter_string(Compare("b", "=", value), TABLE)
    assert complete
    assert read_filter(flt) == scvf("b", "=", b"binary", _enc(value, "bytes"))


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(st.sampled_from(POOLS["s"]), st.text()), min_size=2, max_size=4))
def test_any_str_values_read_back_as_an_or_of_exactly_those_values(values):
    values = list(dict.fromkeys(values))
    expr = normalize(col("s").isin(values))
    flt, complete = to_filter_string(expr, TABLE)
    assert complete
    leaves = [scvf("s", "=", b"binary", _enc(v, "str")) for v in values]
    assert read_filter(flt) == (leaves[0] if len(leaves) == 1 else ("OR", leaves))


@pytest.mark.parametrize("value", POOLS["s"])
def test_an_injection_attempt_stays_inside_its_literal(value):
    flt, _ = to_filter_string((col("s") == value) & (col("s") >= value), TABLE)
    assert read_filter(flt) == (
        "AND",
        [
            scvf("s", "=", b"binary", _enc(value, "str")),
            scvf("s", ">=", b"binary", _enc(value, "str")),
        ],
    )


@pytest.mark.parametrize("column", list(POOLS))
@pytest.mark.parametrize("op", list(_KEEP))
def test_every_pool_value_and_operator_keeps_the_right_rows_in_the_model(column, op):
    for value in POOLS[column]:
        check_pushdown(normalize(Compare(column, op, value)), model_rows)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=PREDICATES)
def test_random_predicates_keep_a_superset_in_the_model(expr):
    check_pushdown(expr, model_rows)


# --------------------------------------------------------------------------- 3. real HBase


@pytest.fixture(scope="module")
def probe_table(request):
    """The ROWS, written to a uniquely named HBase table; dropped after the module."""
    store = request.getfixturevalue("hbase_store")
    name = f"filters_{uuid.uuid4().hex[:12]}"
    store.create_table(name, ["d"])
    try:
        table = store.table(name)
        table.put_many(CELLS.items(), timestamp=1_000)
        yield table
    finally:
        store.delete_table(name)


def _hbase_rows(table) -> Callable[[bytes | None], set[bytes]]:
    def kept(flt: bytes | None) -> set[bytes]:
        if flt is None:
            return set(ROWS)
        return {key for key, _ in table.scan(filter=flt)}

    return kept


@pytest.mark.hbase
def test_hbase_table_holds_the_rows(probe_table):
    assert {key: cells for key, cells in probe_table.scan()} == CELLS


@pytest.mark.hbase
@pytest.mark.parametrize("column", list(POOLS))
@pytest.mark.parametrize("op", list(_KEEP))
def test_hbase_every_pool_value_and_operator_keeps_the_right_rows(probe_table, column, op):
    kept = _hbase_rows(probe_table)
    for value in POOLS[column]:
        check_pushdown(normalize(Compare(column, op, value)), kept)


@pytest.mark.hbase
@pytest.mark.parametrize("column", list(POOLS))
def test_hbase_between_and_is_not_null(probe_table, column):
    kept = _hbase_rows(probe_table)
    check_pushdown(IsNull(column, negated=True), kept)
    pool = sorted(POOLS[column], key=lambda v: (isinstance(v, float) and math.isnan(v), v))
    for low, high in zip(pool, pool[2:], strict=False):
        check_pushdown(Between(column, low, high), kept)
        check_pushdown(Between(column, high, low), kept)  # empty


@pytest.mark.hbase
def test_hbase_like_prefixes(probe_table):
    kept = _hbase_rows(probe_table)
    prefixes = {p[:n] for p in POOLS["s"] for n in range(len(p) + 1)} | {"'", "a\x00", "zz"}
    for prefix in sorted(prefixes):
        check_pushdown(Prefix("s", prefix), kept)


@pytest.mark.hbase
@pytest.mark.parametrize(
    "value",
    ["x') OR (PrefixFilter('", "') OR PageFilter(0) OR ('", "')) OR ((", b"x') OR (PrefixFilter('"],
)
def test_hbase_injection_attempt_returns_exactly_the_matching_rows(probe_table, value):
    column = "s" if isinstance(value, str) else "b"
    expr = col(column) == value
    flt, complete = to_filter_string(expr, TABLE)
    got = _hbase_rows(probe_table)(flt)
    assert complete
    assert got == _expected(expr)
    assert 0 < len(got) < len(ROWS)
    # The other way round too: every row whose value differs, and no NULL row.
    flt, _ = to_filter_string(col(column) != value, TABLE)
    assert _hbase_rows(probe_table)(flt) == _expected(col(column) != value)


@pytest.mark.hbase
def test_hbase_false_matches_nothing(probe_table):
    flt, complete = to_filter_string(FALSE, TABLE)
    assert complete
    assert list(probe_table.scan(filter=flt)) == []


@pytest.mark.hbase
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(expr=PREDICATES)
def test_hbase_random_predicates_keep_a_superset(probe_table, expr):
    check_pushdown(expr, _hbase_rows(probe_table))
