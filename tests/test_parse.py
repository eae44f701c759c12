"""The text predicate syntax: what each form parses to, errors with positions, round trips."""

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from culvert_py.errors import QueryError
from culvert_py.predicate import (
    FALSE,
    KEYWORDS,
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
    normalize,
    parse,
    to_text,
)
from culvert_py.text import normalize_token

TYPES = {
    "age": "int",
    "price": "float",
    "name": "str",
    "blob": "bytes",
    "flag": "bool",
    "at": "datetime",
}


def _show(value):
    return str(value) if isinstance(value, Expr) else repr(value)


# --------------------------------------------------------------------------- what parses to what


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a = 1", Compare("a", "=", 1)),
        ("a != 1", Compare("a", "!=", 1)),
        ("a <> 1", Compare("a", "!=", 1)),
        ("a < 1", Compare("a", "<", 1)),
        ("a <= 1", Compare("a", "<=", 1)),
        ("a > 1", Compare("a", ">", 1)),
        ("a >= 1", Compare("a", ">=", 1)),
        ("a>=-1", Compare("a", ">=", -1)),
        ("a BETWEEN 1 AND 5", Between("a", 1, 5)),
        ("a NOT BETWEEN 1 AND 5", Not(Between("a", 1, 5))),
        ("a IN (1, 2, 3)", In("a", (1, 2, 3))),
        ("a IN ('x')", In("a", ("x",))),
        ("a NOT IN (1, 2)", Not(In("a", (1, 2)))),
        ("a LIKE 'ab%'", Prefix("a", "ab")),
        ("a LIKE '%'", Prefix("a", "")),
        ("a NOT LIKE 'ab%'", Not(Prefix("a", "ab"))),
        ("a LIKE '50!%!_!!%' ESCAPE '!'", Prefix("a", "50%_!")),
        ("a LIKE 'c:\\%'", Prefix("a", "c:\\")),  # backslash is literal without ESCAPE
        ("CONTAINS(a, 'Word')", Contains("a", "word")),
        ("a IS NULL", IsNull("a")),
        ("a IS NOT NULL", IsNull("a", negated=True)),
        ("TRUE", TRUE),
        ("false", FALSE),
        ("NOT a = 1", Not(Compare("a", "=", 1))),
        ("NOT NOT a = 1", Not(Not(Compare("a", "=", 1)))),
        ("(a = 1)", Compare("a", "=", 1)),
        ("a = 1 AND b = 2", And((Compare("a", "=", 1), Compare("b", "=", 2)))),
        ("a = 1 OR b = 2", Or((Compare("a", "=", 1), Compare("b", "=", 2)))),
    ],
    ids=lambda x: x if isinstance(x, str) else _show(x),
)
def test_each_form_parses_to_its_node(text, expected):
    assert parse(text) == expected


def test_precedence_is_not_then_and_then_or():
    a, b, c = col("a") == 1, col("b") == 2, col("c") == 3
    assert parse("a = 1 OR b = 2 AND c = 3") == Or((a, And((b, c))))
    assert parse("a = 1 AND b = 2 OR c = 3") == Or((And((a, b)), c))
    assert parse("NOT a = 1 AND b = 2") == And((Not(a), b))
    assert parse("NOT a = 1 OR b = 2") == Or((Not(a), b))
    assert parse("NOT (a = 1 OR b = 2)") == Not(Or((a, b)))
    assert parse("(a = 1 OR b = 2) AND c = 3") == And((Or((a, b)), c))


def test_between_and_is_not_a_boolean_and():
    assert parse("a BETWEEN 1 AND 2 AND b = 3") == And((Between("a", 1, 2), col("b") == 3))


def test_parentheses_keep_the_nesting_they_write():
    a, b, c = col("a") == 1, col("b") == 2, col("c") == 3
    assert parse("a = 1 AND b = 2 AND c = 3") == And((a, b, c))
    assert parse("(a = 1 AND b = 2) AND c = 3") == And((And((a, b)), c))
    assert parse("a = 1 AND (b = 2 AND c = 3)") == And((a, And((b, c))))
    assert parse("((((a = 1))))") == a


def test_keywords_are_case_insensitive():
    assert parse("a between 1 AnD 2 oR NoT b iS nOt NuLl") == Or(
        (Between("a", 1, 2), Not(IsNull("b", negated=True)))
    )
    assert parse("contains(t, 'x') and a like 'p%' escape '!'") == And(
        (Contains("t", "x"), Prefix("a", "p"))
    )


def test_column_names_are_case_sensitive_and_may_be_quoted():
    assert parse("Age = 1") == Compare("Age", "=", 1)
    assert parse('"unit price" = 1') == Compare("unit price", "=", 1)
    assert parse('"say ""hi""" = 1') == Compare('say "hi"', "=", 1)
    assert parse('"and" = 1') == Compare("and", "=", 1)
    assert parse("android = 1 AND order_ = 2") == And(
        (Compare("android", "=", 1), Compare("order_", "=", 2))
    )


@pytest.mark.parametrize("keyword", sorted(KEYWORDS))
def test_every_keyword_is_reserved_unless_quoted(keyword):
    for spelling in (keyword, keyword.lower()):
        with pytest.raises(QueryError, match="syntax error"):
            parse(f"{spelling} = 1")
    assert parse(f'"{keyword}" = 1') == Compare(keyword, "=", 1)
    assert to_text(Compare(keyword.lower(), "=", 1)) == f'"{keyword.lower()}" = 1'


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'it''s'", "it's"),
        ("''", ""),
        ("'multi\nline'", "multi\nline"),
        ("-12", -12),
        ("+7", 7),
        ("007", 7),
        ("9223372036854775807", 2**63 - 1),
        ("1.5", 1.5),
        ("-0.5", -0.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("1E-3", 0.001),
        ("1e999", math.inf),
        ("-1e999", -math.inf),
        ("true", True),
        ("FALSE", False),
        ("X'00fF'", b"\x00\xff"),
        ("x''", b""),
        ("TIMESTAMP '2013-01-01T10:00:00Z'", datetime(2013, 1, 1, 10, tzinfo=UTC)),
        ("timestamp '2013-01-01T12:00:00+02:00'", datetime(2013, 1, 1, 10, tzinfo=UTC)),
        ("TIMESTAMP '2013-01-01T10:00:00.000123Z'", datetime(2013, 1, 1, 10, 0, 0, 123, UTC)),
        ("TIMESTAMP '2012-12-31T23:00:00-11:00'", datetime(2013, 1, 1, 10, tzinfo=UTC)),
    ],
    ids=repr,
)
def test_literals(literal, value):
    parsed = parse(f"v = {literal}")
    assert isinstance(parsed, Compare)
    assert parsed.value == value
    assert type(parsed.value) is type(value)
    if isinstance(value, datetime):
        assert parsed.value.tzinfo is UTC


def test_integers_and_floats_stay_distinct():
    assert repr(parse("v = 1").value) == "1"
    assert repr(parse("v = 1.0").value) == "1.0"
    assert repr(parse("v = 1e0").value) == "1.0"


# --------------------------------------------------------------------------- strings are data

INJECTIONS = [
    "' OR 1=1 --",
    "x'); DROP TABLE people; --",
    "AND",
    "a = 1 OR b = 2",
    "NOT NULL",
    "(",
    ")",
    "''",
    "'",
    '"',
    "\\",
    "\\'",
    "%_",
    "\x00",
    "a\x00b",
    "\n\r\t",
    "日本語 ✓ 🎉",
    "TIMESTAMP '2013-01-01T00:00:00Z'",
    "X'00'",
    "CONTAINS(a, 'b')",
]


@pytest.mark.parametrize("value", INJECTIONS, ids=repr)
def test_injection_like_strings_are_exactly_the_string_value(value):
    quoted = "'" + value.replace("'", "''") + "'"
    assert parse(f"name = {quoted}") == Compare("name", "=", value)
    assert parse(f"name IN ({quoted}, {quoted})", TYPES) == In("name", (value, value))
    assert parse(to_text(~col("name").startswith(value)), TYPES) == Not(Prefix("name", value))


@given(st.text())
def test_any_string_literal_parses_to_exactly_its_value(value):
    quoted = "'" + value.replace("'", "''") + "'"
    assert parse(f"name = {quoted}", TYPES) == Compare("name", "=", value)


@given(st.text(min_size=1))
def test_any_quoted_column_name_parses_to_exactly_that_name(name):
    quoted = '"' + name.replace('"', '""') + '"'
    assert parse(f"{quoted} IS NULL") == IsNull(name)


# --------------------------------------------------------------------------- syntax errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("age = 1 AND AND b = 2", "syntax error at 1:13: unexpected 'AND' (expected a condition)"),
        ("age BETWEEN AND 5", "syntax error at 1:13: unexpected 'AND' (expected a value)"),
        ("age between 1 or 5", "syntax error at 1:15: unexpected 'or' (expected AND)"),
        ("", "syntax error at 1:1: unexpected end of input (expected a condition)"),
        ("   ", "syntax error at 1:4: unexpected end of input (expected a condition)"),
        ("age =", "syntax error at 1:6: unexpected end of input (expected a value)"),
        ("age", "syntax error at 1:4: unexpected end of input (expected an operator)"),
        ("age == 1", "syntax error at 1:6: unexpected '=' (expected a value)"),
        ("a = 1 b = 2", "syntax error at 1:7: unexpected 'b'"),
        ("a = 1\nAND b =", "syntax error at 2:8: unexpected end of input (expected a value)"),
        ("a = 1 &&", "syntax error at 1:7: unexpected character '&'"),
        ("a = ٣", "syntax error at 1:5: unexpected character '٣'"),
        ("name = 'abc", "syntax error at 1:8: unterminated string"),
        ('"abc = 1', "syntax error at 1:1: unterminated or empty quoted name"),
        ("CONTAINS(a)", "syntax error at 1:11: unexpected ')' (expected ',')"),
        ("CONTAINS(a, 1)", "syntax error at 1:13: unexpected '1' (expected a string)"),
        ("a IN ()", "syntax error at 1:7: unexpected ')' (expected a value)"),
        ("a LIKE 1", "syntax error at 1:8: unexpected '1' (expected a string)"),
        (
            "a = 'x' 'y'",
            "syntax error at 1:9: unexpected string (expected AND, OR or end of input)",
        ),
    ],
    ids=repr,
)
def test_syntax_errors_name_position_and_token(text, message):
    with pytest.raises(QueryError) as caught:
        parse(text)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a = NULL", "comparison with NULL at 1:5 is never true: use a IS NULL"),
        ("a <> null", "comparison with NULL at 1:6 is never true: use a IS NOT NULL"),
        ('"x y" != NULL', 'use "x y" IS NOT NULL'),
        ("a IN (1, NULL)", "NULL at 1:10 in the IN list of column 'a' never matches: use a IS"),
        ("a BETWEEN NULL AND 1", "NULL at 1:11 in BETWEEN of column 'a'"),
        ("a LIKE 'a_c%'", "LIKE pattern 'a_c%' at 1:8: '_' \\(any one character\\) is not"),
        ("a LIKE 'a%c'", "LIKE pattern 'a%c' at 1:8: only prefix patterns"),
        ("a LIKE '%a%'", "only prefix patterns such as 'abc%'"),
        ("a LIKE 'abc'", "LIKE pattern 'abc' at 1:8 does not end with '%': use = for an exact"),
        ("a LIKE 'a!b%' ESCAPE '!'", "escape character '!' must be followed by %, _ or itself"),
        ("a LIKE 'a!' ESCAPE '!'", "escape character '!' must be followed by %, _ or itself"),
        ("a LIKE 'a%' ESCAPE '!!'", "ESCAPE '!!' at 1:20 must be exactly one character"),
        ("CONTAINS(a, 'two words')", "not a single word to search for.* at 1:13$"),
        ("CONTAINS(a, '')", "no word characters at 1:13$"),
        ("a = X'0'", "bytes literal \"X'0'\" at 1:5 is not an even number of hex digits"),
        ("a = X'zz'", "not an even number of hex digits"),
        ("a = TIMESTAMP 'soon'", "invalid timestamp 'soon' at 1:5: expected ISO-8601"),
        ("a = TIMESTAMP '2013-01-01T10:00:00'", "has no timezone: add Z for UTC or an offset"),
        ("a = TIMESTAMP '2013-01-01'", "has no timezone"),
        ("a = TIMESTAMP '0001-01-01T00:00:00+01:00'", "out of range in UTC"),
        ("a = " + "9" * 5000, "integer literal at 1:5 is too long"),
        ("NOT " * 5000 + "a = 1", "nested too deeply"),
    ],
    ids=repr,
)
def test_malformed_conditions_are_rejected_with_position(text, message):
    with pytest.raises(QueryError, match=message):
        parse(text)


def test_parse_rejects_non_str():
    with pytest.raises(QueryError, match="must be a str, got bytes"):
        parse(b"a = 1")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- binding


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("agee = 1", "unknown column 'agee' at 1:1 (did you mean 'age'? known: age, price, "),
        ("age = 'x'", "cannot compare int column 'age' with string 'x' at 1:7"),
        ("age = 1 AND\n  price IN (1, 'x')", "cannot compare float column 'price' with string"),
        ("price BETWEEN 1 AND 'x'", "with string 'x' at 1:21"),
        ("name LIKE 'a%' OR age LIKE 'b%'", "cannot use LIKE on int column 'age' at 1:19"),
        ("CONTAINS(\"blob\", 'x')", "cannot use CONTAINS on bytes column 'blob' at 1:10"),
        ("at > TIMESTAMP 'x'", "invalid timestamp"),
        ("at > '2013-01-01T00:00:00Z'", "datetime column 'at' with string '2013-01-01T00:00:00Z'"),
        ("at > 2013", "cannot compare datetime column 'at' with integer 2013 at 1:6"),
        ("flag = 1", "cannot compare bool column 'flag' with integer 1 at 1:8"),
        ("age = TRUE", "cannot compare int column 'age' with boolean TRUE at 1:7"),
        ("age = 1.5", "cannot compare int column 'age' with float 1.5 at 1:7"),
        ("name = X'00'", "cannot compare str column 'name' with bytes X'00' at 1:8"),
        ("age > 9223372036854775808", "out of range [-2**63, 2**63 - 1] at 1:7"),
        ("nope IS NULL", "unknown column 'nope' at 1:1 (known: age, price, name"),
    ],
    ids=repr,
)
def test_binding_errors_point_at_the_column_or_literal(text, message):
    with pytest.raises(QueryError) as caught:
        parse(text, TYPES)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_binding_error_positions_count_lines():
    with pytest.raises(QueryError, match=r"with string 'x' at 2:16$"):
        parse("age = 1 AND\n  price IN (1, 'x')", TYPES)


def test_parse_with_column_types_returns_the_bound_tree():
    parsed = parse("price = 1 AND age IN (1, 2) AND at < TIMESTAMP '2013-01-01T00:00:00Z'", TYPES)
    assert repr(parsed.children[0]) == "Compare(column='price', op='=', value=1.0)"
    assert parsed == And(
        (
            Compare("price", "=", 1.0),
            In("age", (1, 2)),
            Compare("at", "<", datetime(2013, 1, 1, tzinfo=UTC)),
        )
    )


def test_parse_rejects_bad_column_types():
    with pytest.raises(QueryError, match="mapping"):
        parse("a = 1", ["a"])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- round trips

_NAMES = st.sampled_from(["a", "b_2", "Age", "and", "select", "unit price", 'q"t', "x"]) | st.text(
    min_size=1, max_size=6
)
_VALUES = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=6),
    st.booleans(),
    st.datetimes(timezones=st.just(UTC)),
    st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.builds(
            timezone, st.integers(-23 * 60, 23 * 60).map(lambda m: timedelta(minutes=m))
        ),
    ),
)


def _is_word(text: str) -> bool:
    try:
        return normalize_token(text) == text
    except QueryError:
        return False


_WORDS = st.text(st.characters(categories=["Ll", "Lu", "Nd"]), min_size=1, max_size=8).map(
    str.casefold
)
_LEAVES = st.one_of(
    st.builds(Compare, _NAMES, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), _VALUES),
    st.builds(Between, _NAMES, _VALUES, _VALUES),
    st.builds(In, _NAMES, st.lists(_VALUES, min_size=1, max_size=3).map(tuple)),
    st.builds(Prefix, _NAMES, st.text(max_size=8)),
    st.builds(Contains, _NAMES, _WORDS.filter(_is_word)),
    st.builds(IsNull, _NAMES, st.booleans()),
    st.builds(Const, st.booleans()),
)
_TREES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(And, st.lists(inner, min_size=2, max_size=3).map(tuple)),
        st.builds(Or, st.lists(inner, min_size=2, max_size=3).map(tuple)),
    ),
    max_leaves=10,
)


@given(_TREES)
def test_to_text_then_parse_gives_back_the_same_tree(expr):
    parsed = parse(to_text(expr))
    assert parsed == expr
    assert repr(parsed) == repr(expr)  # also the literals' types (1 vs 1.0 vs True)


def test_bound_predicates_round_trip_through_text():
    expr = bind(
        (col("price") > 1) & col("name").startswith("50%") | ~col("at").is_null(),
        TYPES,
    )
    assert parse(to_text(expr), TYPES) == expr


def test_nan_and_infinities_round_trip_through_explain_text():
    expr = parse("f = NaN OR f IN (1e999, -1e999) OR f BETWEEN -1e999 AND NaN", TYPES_ALL)
    assert str(expr) == "f = NaN OR f IN (1e999, -1e999) OR f BETWEEN -1e999 AND NaN"
    assert parse(str(expr), TYPES_ALL) == expr
    with pytest.raises(QueryError, match="cannot compare int column 'i' with float NaN at 1:5"):
        parse("i = NaN", TYPES_ALL)
    assert parse('"nan" = 1', {"nan": "int"}) == Compare("nan", "=", 1)  # NaN is a keyword
    for spelling in ("NaN", "nan", "NAN"):
        value = parse(f"v = {spelling}").value
        assert isinstance(value, float) and math.isnan(value)


# A table with every column type (and names that need quoting), and leaves that bind to it.
TYPES_ALL = {
    "i": "int",
    "f": "float",
    "s": "str",
    "y": "bytes",
    "t": "bool",
    "d": "datetime",
    "nan": "float",
    "unit price": "str",
}
_TYPED_VALUES = {
    "int": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats()
    | st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e-310])
    | st.integers(-(2**53), 2**53),
    "str": st.text(max_size=8) | st.sampled_from(["it's", "''", '"', "\\", "%_", "a\x00b"]),
    "bytes": st.binary(max_size=6) | st.sampled_from([b"'", b"\x00", b"\xff"]),
    "bool": st.booleans(),
    "datetime": st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.just(UTC)
        | st.builds(timezone, st.integers(-23 * 60, 23 * 60).map(lambda m: timedelta(minutes=m))),
    ),
}


def _typed_leaves(column: str) -> st.SearchStrategy:
    kind = TYPES_ALL[column]
    values = _TYPED_VALUES[kind]
    options = [
        st.builds(
            Compare, st.just(column), st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), values
        ),
        st.builds(Between, st.just(column), values, values),
        st.builds(In, st.just(column), st.lists(values, min_size=1, max_size=4).map(tuple)),
        st.builds(IsNull, st.just(column), st.booleans()),
    ]
    if kind == "str":
        options.append(st.builds(Prefix, st.just(column), st.text(max_size=6)))
        options.append(st.builds(Contains, st.just(column), _WORDS.filter(_is_word)))
    return st.one_of(options)


_TYPED_TREES = st.recursive(
    st.sampled_from(sorted(TYPES_ALL)).flatmap(_typed_leaves) | st.builds(Const, st.booleans()),
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(And, st.lists(inner, min_size=2, max_size=3).map(tuple)),
        st.builds(Or, st.lists(inner, min_size=2, max_size=3).map(tuple)),
    ),
    max_leaves=12,
)


@given(_TYPED_TREES)
def test_the_text_of_every_bound_predicate_parses_back_to_it(expr):
    # str() is what explain prints and what a user copies back into a query.
    bound = bind(expr, TYPES_ALL)
    assert parse(str(bound), TYPES_ALL) == bound
    assert repr(parse(str(bound), TYPES_ALL)) == repr(bound)
    normal = normalize(bound)
    assert parse(str(normal), TYPES_ALL) == normal
    assert normalize(parse(str(bound), TYPES_ALL)) == normal
