"""The predicate tree: building, three-valued evaluation, binding, normalisation, rendering."""

import math
import re
import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from culvert_py.encoding import encode_value
from culvert_py.errors import QueryError
from culvert_py.predicate import (
    FALSE,
    TRUE,
    And,
    Between,
    Compare,
    Const,
    Contains,
    Expr,
    In,
    IsNull,
    Not,
    Or,
    Prefix,
    bind,
    col,
    columns_of,
    evaluate,
    matches,
    normalize,
    sort_key,
    to_text,
)

NAN = math.nan
INF = math.inf

# --------------------------------------------------------------------------- building


def test_col_comparisons_build_compare_nodes():
    age = col("age")
    assert (age == 3) == Compare("age", "=", 3)
    assert (age != 3) == Compare("age", "!=", 3)
    assert (age < 3) == Compare("age", "<", 3)
    assert (age <= 3) == Compare("age", "<=", 3)
    assert (age > 3) == Compare("age", ">", 3)
    assert (age >= 3) == Compare("age", ">=", 3)
    assert (3 < age) == Compare("age", ">", 3)  # noqa: SIM300 (reflected on purpose)


def test_col_methods_build_their_nodes():
    assert col("a").between(1, 5) == Between("a", 1, 5)
    assert col("a").isin([1, 2, 2]) == In("a", (1, 2, 2))
    assert col("a").isin(x for x in "xy") == In("a", ("x", "y"))
    assert col("a").startswith("ab") == Prefix("a", "ab")
    assert col("a").contains("Word") == Contains("a", "word")
    assert col("a").is_null() == IsNull("a")
    assert col("a").is_not_null() == IsNull("a", negated=True)


def test_operators_combine_and_flatten_into_n_ary_nodes():
    a, b, c = col("a") == 1, col("b") == 2, col("c") == 3
    assert a & b & c == And((a, b, c))
    assert a | b | c == Or((a, b, c))
    assert (a & b) | c == Or((And((a, b)), c))
    assert ~a == Not(a)
    assert ~~a == Not(Not(a))


def test_nodes_are_hashable_and_equal_by_value():
    built = (col("a") == 1.5) & col("b").isin(["x"])
    assert built == And((Compare("a", "=", 1.5), In("b", ("x",))))
    assert hash(built) == hash(And((Compare("a", "=", 1.5), In("b", ("x",)))))
    assert len({col("a") == NAN, col("a") == float("nan")}) == 1  # NaN is canonical


def test_literals_are_canonical():
    assert (col("a") == -0.0).value == 0.0
    assert math.copysign(1, (col("a") == -0.0).value) == 1
    assert (col("a") == bytearray(b"x")).value == b"x"
    stamp = datetime(2013, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    bound = (col("a") == stamp).value
    assert bound == stamp and bound.tzinfo is UTC


def test_in_values_are_kept_as_a_tuple():
    assert col("a").isin([1, 2]).values == (1, 2)


def test_isin_of_nothing_is_false():
    assert col("a").isin([]) == FALSE


def test_comparing_with_none_tells_to_use_is_null():
    with pytest.raises(QueryError, match=r"use col\('x'\)\.is_null\(\)"):
        _ = col("x") == None  # noqa: E711
    with pytest.raises(QueryError, match=r"use col\('x'\)\.is_not_null\(\)"):
        _ = col("x") != None  # noqa: E711
    with pytest.raises(QueryError, match="is_null"):
        col("x").between(None, 3)
    with pytest.raises(QueryError, match="is_null"):
        col("x").isin([1, None])


def test_predicates_have_no_truth_value():
    a, b = col("a") == 1, col("b") == 2
    with pytest.raises(QueryError, match=re.escape("use & | ~ not and/or/not")):
        _ = a and b
    with pytest.raises(QueryError, match=re.escape("use & | ~ not and/or/not")):
        _ = not a
    with pytest.raises(QueryError, match="between"):
        _ = 1 < col("a") < 5  # chained comparison ANDs two predicates


def test_unparenthesised_comparisons_are_caught():
    with pytest.raises(QueryError, match="parentheses"):
        _ = col("a") == 1 & col("b") == 2  # parsed as col("a") == (1 & col("b")) == 2
    with pytest.raises(QueryError, match="parentheses"):
        _ = (col("a") == 1) & True  # type: ignore[operator]
    with pytest.raises(QueryError, match="not a predicate"):
        bool(col("a"))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Compare("a", "==", 1), "unknown comparison operator '=='"),
        (lambda: col(""), "non-empty str"),
        (lambda: col("a") == [1], "cannot compare with list"),
        (lambda: col("a") == datetime(2013, 1, 1), "naive datetime"),
        (lambda: col("a") == col("b"), "can only be compared with a value"),
        (lambda: col("a").isin("abc"), "collection of values"),
        (lambda: col("a").startswith(1), "prefix must be a str"),
        (lambda: col("a").contains("two words"), "CONTAINS on column 'a'.*not a single word"),
        (lambda: And((col("a") == 1,)), "at least two"),
        (lambda: Or((col("a") == 1, "b")), "is not a predicate"),
        (lambda: Not(True), "is not a predicate"),
        (lambda: IsNull("a", negated=1), "must be a bool"),
    ],
)
def test_invalid_nodes_are_rejected_at_construction(build, message):
    with pytest.raises(QueryError, match=message):
        build()


def test_compare_accepts_sql_not_equal_spelling():
    assert Compare("a", "<>", 1) == Compare("a", "!=", 1)


def test_columns_of_lists_every_column_read():
    expr = ((col("a") == 1) | ~col("b").is_null()) & col("c").contains("x") & TRUE
    assert columns_of(expr) == frozenset({"a", "b", "c"})


# --------------------------------------------------------------------------- evaluation

# p and q stand for predicates whose value on a row is True, False or unknown (NULL).
_ROW_FOR = {True: 1, False: 2, None: None}


def _kleene_and(x, y):
    if x is False or y is False:
        return False
    return None if x is None or y is None else True


def _kleene_or(x, y):
    if x is True or y is True:
        return True
    return None if x is None or y is None else False


TRUTH = [True, False, None]


@pytest.mark.parametrize("x", TRUTH)
@pytest.mark.parametrize("y", TRUTH)
def test_and_or_follow_sql_three_valued_logic(x, y):
    p, q = col("p") == 1, col("q") == 1
    row = {"p": _ROW_FOR[x], "q": _ROW_FOR[y]}
    assert evaluate(p, row) is x and evaluate(q, row) is y
    assert evaluate(p & q, row) is _kleene_and(x, y)
    assert evaluate(p | q, row) is _kleene_or(x, y)


@pytest.mark.parametrize("x", TRUTH)
def test_not_of_unknown_is_unknown(x):
    row = {"p": _ROW_FOR[x]}
    assert evaluate(~(col("p") == 1), row) is (None if x is None else not x)


@pytest.mark.parametrize(
    "leaf",
    [
        col("v") == 1,
        col("v") != 1,
        col("v") < 1,
        col("v") >= 1,
        col("v").between(0, 9),
        col("v").isin([1, 2]),
        col("v").startswith("a"),
        col("v").contains("a"),
    ],
    ids=str,
)
@pytest.mark.parametrize("row", [{}, {"v": None}], ids=["missing", "none"])
def test_any_leaf_with_a_null_operand_is_unknown(leaf, row):
    assert evaluate(leaf, row) is None
    assert evaluate(~leaf, row) is None
    assert not matches(leaf, row) and not matches(~leaf, row)


def test_is_null_is_never_unknown():
    for row in ({}, {"v": None}):
        assert evaluate(col("v").is_null(), row) is True
        assert evaluate(col("v").is_not_null(), row) is False
    assert evaluate(col("v").is_null(), {"v": 0}) is False
    assert evaluate(col("v").is_not_null(), {"v": ""}) is True


def test_not_greater_does_not_match_rows_with_null_age():
    rows = [{"id": 1, "age": 2}, {"id": 2, "age": 5}, {"id": 3, "age": None}, {"id": 4}]
    assert [r["id"] for r in rows if matches(~(col("age") > 3), r)] == [1]
    assert [r["id"] for r in rows if matches(col("age").is_null(), r)] == [3, 4]


@pytest.mark.parametrize(
    ("expr", "value", "expected"),
    [
        (col("v") == 3, 3, True),
        (col("v") == 3, 3.0, True),
        (col("v") != 3, 4, True),
        (col("v") < 3, 2.5, True),
        (col("v") <= 3, 3, True),
        (col("v") > 3, 3, False),
        (col("v") >= 3, 3, True),
        (col("v").between(1, 3), 1, True),
        (col("v").between(1, 3), 3, True),
        (col("v").between(1, 3), 3.5, False),
        (col("v").between(3, 1), 2, False),  # low > high: empty
        (col("v").isin([1, 2]), 2, True),
        (col("v").isin([1, 2]), 3, False),
        (col("v") < "b", "abc", True),
        (col("v").startswith("ab"), "abc", True),
        (col("v").startswith("ab"), "a", False),
        (col("v").startswith(""), "", True),
        (col("v").contains("world"), "Hello, World!", True),
        (col("v").contains("wor"), "Hello, World!", False),
        (col("v") == b"\x00", b"\x00", True),
        (col("v") < True, False, True),
        (col("v") > datetime(2013, 1, 1, tzinfo=UTC), datetime(2013, 1, 2, tzinfo=UTC), True),
    ],
    ids=lambda x: str(x) if isinstance(x, Expr) else repr(x),
)
def test_leaves_on_non_null_values(expr, value, expected):
    assert evaluate(expr, {"v": value}) is expected


@pytest.mark.parametrize(
    ("expr", "value", "expected"),
    [
        (col("v") == NAN, NAN, True),
        (col("v") != NAN, NAN, False),
        (col("v") > INF, NAN, True),
        (col("v") < NAN, INF, True),
        (col("v") >= 1e308, NAN, True),
        (col("v").between(0, INF), NAN, False),
        (col("v").between(0, NAN), NAN, True),
        (col("v") == 0.0, -0.0, True),
        (col("v") == -0.0, 0, True),
        (col("v") < 0.0, -0.0, False),
        (col("v").isin([NAN]), float("nan"), True),
    ],
    ids=lambda x: str(x) if isinstance(x, Expr) else repr(x),
)
def test_floats_compare_in_index_order(expr, value, expected):
    assert evaluate(expr, {"v": value}) is expected


_FLOATS = st.floats(allow_nan=True) | st.sampled_from([NAN, -0.0, 0.0, INF, -INF])


@given(_FLOATS, _FLOATS)
def test_sort_key_agrees_with_the_encoding_byte_order(a, b):
    ka, kb = sort_key(a), sort_key(b)
    ea, eb = encode_value(a, "float"), encode_value(b, "float")
    assert (ka < kb, ka == kb) == (ea < eb, ea == eb)


@given(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**63), 2**63 - 1))
def test_sort_key_agrees_with_the_encoding_byte_order_for_ints(a, b):
    assert (sort_key(a) < sort_key(b)) == (encode_value(a, "int") < encode_value(b, "int"))


@pytest.mark.parametrize(
    ("expr", "row"),
    [
        (col("v") == 1, {"v": "1"}),
        (col("v") == 1, {"v": True}),
        (col("v").startswith("a"), {"v": 1}),
        (col("v").contains("a"), {"v": b"a"}),
        (col("v") < datetime(2013, 1, 1, tzinfo=UTC), {"v": datetime(2013, 1, 1)}),
    ],
)
def test_evaluate_rejects_values_of_another_type(expr, row):
    with pytest.raises(QueryError, match="column 'v'"):
        evaluate(expr, row)


def test_constants_evaluate_to_themselves():
    assert evaluate(TRUE, {}) is True and evaluate(FALSE, {}) is False


# --------------------------------------------------------------------------- an SQL oracle

# SQLite implements SQL's three-valued logic independently of this module; over ints, strs and
# NULL (SQLite has no NaN) its answer must be evaluate's.


def _sql(expr: Expr, params: list) -> str:
    def p(value):
        params.append(value)
        return "?"

    match expr:
        case Compare(column, op, value):
            return f"({column} {op} {p(value)})"
        case Between(column, low, high):
            return f"({column} BETWEEN {p(low)} AND {p(high)})"
        case In(column, values):
            return f"({column} IN ({', '.join(p(v) for v in values)}))"
        case Prefix(column, prefix):
            return f"(substr({column}, 1, {len(prefix)}) = {p(prefix)})"
        case IsNull(column, negated):
            return f"({column} IS {'NOT ' if negated else ''}NULL)"
        case Const(value):
            return "(1 = 1)" if value else "(1 = 0)"
        case Not(child):
            return f"(NOT {_sql(child, params)})"
        case And(children):
            return "(" + " AND ".join(_sql(c, params) for c in children) + ")"
        case Or(children):
            return "(" + " OR ".join(_sql(c, params) for c in children) + ")"
    raise AssertionError(expr)


_SMALL_INTS = st.integers(-2, 2)
_SMALL_STRS = st.sampled_from(["", "a", "ab", "b", "ba", "é"])
_OPS = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])


def _leaves(numbers, strings, extra=None):
    return st.one_of(
        st.builds(Compare, st.just("n"), _OPS, numbers),
        st.builds(Between, st.just("n"), numbers, numbers),
        st.builds(In, st.just("n"), st.lists(numbers, min_size=1, max_size=3).map(tuple)),
        st.builds(Compare, st.just("s"), _OPS, strings),
        st.builds(Between, st.just("s"), strings, strings),
        st.builds(In, st.just("s"), st.lists(strings, min_size=1, max_size=3).map(tuple)),
        st.builds(Prefix, st.just("s"), strings),
        st.builds(IsNull, st.sampled_from(["n", "s", "t"]), st.booleans()),
        st.builds(Const, st.booleans()),
        extra if extra is not None else st.nothing(),
    )


def _trees(leaves):
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds(Not, inner),
            st.builds(And, st.lists(inner, min_size=2, max_size=3).map(tuple)),
            st.builds(Or, st.lists(inner, min_size=2, max_size=3).map(tuple)),
        ),
        max_leaves=8,
    )


_SQL_TREES = _trees(_leaves(_SMALL_INTS, _SMALL_STRS))
_SQL_ROWS = st.fixed_dictionaries(
    {}, optional={"n": st.none() | _SMALL_INTS, "s": st.none() | _SMALL_STRS, "t": st.none()}
)


@settings(max_examples=300)
@given(_SQL_TREES, _SQL_ROWS)
def test_evaluate_agrees_with_sqlite(expr, row):
    params: list = []
    query = f"SELECT {_sql(expr, params)} FROM r"
    with sqlite3.connect(":memory:") as db:
        db.execute("CREATE TABLE r (n INTEGER, s TEXT, t INTEGER)")
        db.execute("INSERT INTO r VALUES (?, ?, ?)", (row.get("n"), row.get("s"), row.get("t")))
        (answer,) = db.execute(query, params).fetchone()
    assert evaluate(expr, row) is (None if answer is None else bool(answer))


# --------------------------------------------------------------------------- binding

TYPES = {
    "age": "int",
    "price": "float",
    "name": "str",
    "blob": "bytes",
    "flag": "bool",
    "at": "datetime",
}
WHEN = datetime(2013, 1, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "bound"),
    [
        (col("age") == 3, Compare("age", "=", 3)),
        (col("price") > 3, Compare("price", ">", 3.0)),
        (col("price").between(1, 2.5), Between("price", 1.0, 2.5)),
        (col("price").isin([1, 2]), In("price", (1.0, 2.0))),
        (col("name").startswith("a"), Prefix("name", "a")),
        (col("name").contains("A"), Contains("name", "a")),
        (col("blob") == b"\x00", Compare("blob", "=", b"\x00")),
        (col("flag") == True, Compare("flag", "=", True)),  # noqa: E712
        (col("at") >= WHEN, Compare("at", ">=", WHEN)),
        (col("age").between(5, 1), Between("age", 5, 1)),
        (col("age").is_null() | ~TRUE, Or((IsNull("age"), Not(TRUE)))),
    ],
    ids=str,
)
def test_bind_accepts_and_coerces_literals(expr, bound):
    result = bind(expr, TYPES)
    assert result == bound
    assert repr(result) == repr(bound)  # the coerced type too: 3.0 is not 3 here


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (col("agee") == 1, r"unknown column 'agee' \(did you mean 'age'\? known: age, price"),
        (col("zzz").is_null(), r"unknown column 'zzz' \(known: age, price, name"),
        (col("age") == "x", "cannot compare int column 'age' with string 'x'$"),
        (col("age") == True, "cannot compare int column 'age' with boolean TRUE"),  # noqa: E712
        (col("age") == 1.5, "cannot compare int column 'age' with float 1.5"),
        (col("flag") == 1, "cannot compare bool column 'flag' with integer 1"),
        (col("price") == "1", "cannot compare float column 'price' with string '1'"),
        (col("price") == 2**53 + 1, "integer 9007199254740993 has no exact float value"),
        (col("price") == 10**400, "has no exact float value"),
        (col("name") == b"x", "cannot compare str column 'name' with bytes X'78'"),
        (col("blob") == "x", "cannot compare bytes column 'blob' with string 'x'"),
        (col("at") == "2013-01-01", "cannot compare datetime column 'at' with string"),
        (col("age").isin([1, "2"]), "cannot compare int column 'age' with string '2'"),
        (col("age").between(1, "9"), "cannot compare int column 'age' with string '9'"),
        (col("age").startswith("1"), "cannot use LIKE on int column 'age'"),
        (col("blob").contains("x"), "cannot use CONTAINS on bytes column 'blob'"),
        (col("age") == 2**63, r"int 9223372036854775808 out of range"),
        (col("name") == "\ud800", "lone surrogate"),
    ],
    ids=str,
)
def test_bind_rejects_with_a_message_naming_column_and_literal(expr, message):
    with pytest.raises(QueryError, match=message):
        bind(expr, TYPES)


def test_bind_finds_errors_deep_in_the_tree():
    expr = (col("age") == 1) & ~((col("name") == "x") | (col("price") == "y"))
    with pytest.raises(QueryError, match="float column 'price' with string 'y'"):
        bind(expr, TYPES)


def test_bind_rejects_unknown_column_types():
    with pytest.raises(QueryError, match="column 'x' has unknown type 'varchar'"):
        bind(col("x") == 1, {"x": "varchar"})


def test_bind_reports_positions_through_locate():
    expr = col("agee") == 1
    with pytest.raises(QueryError, match=r"unknown column 'agee' at 3:4 \("):
        bind(expr, TYPES, locate=lambda node, part: "3:4" if node is expr else None)


# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("expr", "normal"),
    [
        (~(col("a") == 1), col("a") != 1),
        (~(col("a") != 1), col("a") == 1),
        (~(col("a") < 5), col("a") >= 5),
        (~(col("a") <= 5), col("a") > 5),
        (~(col("a") > 5), col("a") <= 5),
        (~(col("a") >= 5), col("a") < 5),
        (~col("a").is_null(), col("a").is_not_null()),
        (~col("a").is_not_null(), col("a").is_null()),
        (~col("a").isin([1, 2]), (col("a") != 1) & (col("a") != 2)),
        (col("a").isin([1, 2, 1]), (col("a") == 1) | (col("a") == 2)),
        (col("a").isin([1]), col("a") == 1),
        (~col("a").between(1, 5), (col("a") < 1) | (col("a") > 5)),
        (~col("a").startswith("x"), Not(Prefix("a", "x"))),
        (~col("a").contains("x"), Not(Contains("a", "x"))),
        (~~col("a").startswith("x"), Prefix("a", "x")),
        (~((col("a") == 1) & (col("b") == 2)), (col("a") != 1) | (col("b") != 2)),
        (~((col("a") == 1) | (col("b") == 2)), (col("a") != 1) & (col("b") != 2)),
        (And((And((col("a") == 1, col("b") == 2)), col("c") == 3)), None),
        ((col("a") == 1) & (col("a") == 1), col("a") == 1),
        ((col("a") == 1) & TRUE, col("a") == 1),
        ((col("a") == 1) & FALSE, FALSE),
        ((col("a") == 1) | TRUE, TRUE),
        ((col("a") == 1) | FALSE, col("a") == 1),
        (~TRUE, FALSE),
        (TRUE & TRUE, TRUE),
    ],
    ids=str,
)
def test_normalize_rewrites(expr, normal):
    if normal is None:  # flattening: nested ANDs become one
        normal = (col("a") == 1) & (col("b") == 2) & (col("c") == 3)
    assert normalize(expr) == normal


_NUMBERS = _SMALL_INTS | st.sampled_from([NAN, -0.0, 0.0, 1.5, INF, -INF])
_WORDS = st.sampled_from(["hello", "world", "a", "b"])
_NORMALIZE_TREES = _trees(
    _leaves(
        _NUMBERS,
        st.sampled_from(["", "a", "ab", "b", "hello world", "Hello a"]),
        st.builds(Contains, st.just("s"), _WORDS)
        | st.builds(Compare, st.just("t"), _OPS, st.booleans()),
    )
)
_NORMALIZE_ROWS = st.fixed_dictionaries(
    {},
    optional={
        "n": st.none() | _NUMBERS,
        "s": st.none() | st.sampled_from(["", "a", "ab", "b", "hello world", "b a"]),
        "t": st.none() | st.booleans(),
    },
)


def _is_normal(expr: Expr, top: bool = True) -> bool:
    match expr:
        case In():
            return False
        case Const():
            return top
        case Not(child):
            return isinstance(child, Prefix | Contains)
        case And(children) | Or(children):
            return len(set(children)) == len(children) and all(
                not isinstance(c, type(expr)) and _is_normal(c, False) for c in children
            )
    return True


@settings(max_examples=400)
@given(_NORMALIZE_TREES, _NORMALIZE_ROWS)
def test_normalize_preserves_three_valued_semantics(expr, row):
    normal = normalize(expr)
    assert evaluate(normal, row) is evaluate(expr, row)


@given(_NORMALIZE_TREES)
def test_normalize_reaches_normal_form_and_is_idempotent(expr):
    normal = normalize(expr)
    assert _is_normal(normal)
    assert normalize(normal) == normal
    assert columns_of(normal) <= columns_of(expr)


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        ((col("a") == 1) & (col("b") != "it's"), "a = 1 AND b != 'it''s'"),
        ((col("a") == 1) & (col("b") == 2) | (col("c") == 3), "(a = 1 AND b = 2) OR c = 3"),
        (~((col("a") == 1) | (col("b") == 2)), "NOT (a = 1 OR b = 2)"),
        (col("not").is_not_null(), '"not" IS NOT NULL'),
        (col("select").is_null(), "select IS NULL"),
        (col("unit price") < 2.5, '"unit price" < 2.5'),
        (col('say "hi"') == True, '"say ""hi""" = TRUE'),  # noqa: E712
        (col("a").between(-INF, INF), "a BETWEEN -1e999 AND 1e999"),
        (col("a").isin([b"\x00\xff", 1e-05]), "a IN (X'00ff', 1e-05)"),
        (col("a") >= WHEN, "a >= TIMESTAMP '2013-01-01T10:00:00Z'"),
        (col("a").startswith("x'y"), "a LIKE 'x''y%'"),
        (col("a").startswith("50%_\\"), "a LIKE '50\\%\\_\\\\%' ESCAPE '\\'"),
        (col("a").contains("Wörd"), "CONTAINS(a, 'wörd')"),
        (FALSE, "FALSE"),
    ],
    ids=repr,
)
def test_to_text_writes_the_text_syntax(expr, text):
    assert to_text(expr) == text
    assert str(expr) == text


def test_nan_is_written_as_the_nan_keyword():
    expr = col("a").isin([NAN, INF, -INF])
    assert to_text(expr) == str(expr) == "a IN (NaN, 1e999, -1e999)"
