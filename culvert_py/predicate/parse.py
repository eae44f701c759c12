"""Parsing of the text predicate syntax (a SQL WHERE subset) into the predicate tree.

Used by the CLI and by schema files (partial indexes' ``where``)::

    origin = 'JFK' AND dep_delay > 120
    NOT (carrier IN ('AA', 'UA') OR tail IS NULL) AND CONTAINS(remarks, 'diverted')

The grammar, from loosest to tightest binding: ``OR``, ``AND``, ``NOT``, then one condition:

==================================  =========================================================
condition                           tree (:mod:`culvert_py.predicate.tree`)
==================================  =========================================================
``a = v`` (``!=``/``<>``, ``<``,    ``Compare``
``<=``, ``>``, ``>=``)
``a [NOT] BETWEEN v AND w``         ``Between`` (inclusive), ``Not(Between)``
``a [NOT] IN (v, …)``               ``In``, ``Not(In)``
``a [NOT] LIKE 'abc%' [ESCAPE 'c']``  ``Prefix``, ``Not(Prefix)``
``CONTAINS(a, 'word')``             ``Contains`` (one word, normalised as text indexes do)
``a IS [NOT] NULL``                 ``IsNull``
``TRUE``, ``FALSE``                 ``Const``
``( … )``                           grouping; ``x AND (y AND z)`` keeps its nested shape
==================================  =========================================================

Decisions:

* **Keywords** (:data:`~culvert_py.predicate.literal.KEYWORDS`) are case-insensitive and reserved.
* **Column names** are ``[A-Za-z_][A-Za-z0-9_]*`` and case-sensitive (they are schema
  names, not folded as SQL folds them), or double-quoted with ``""`` for a quote:
  ``"order"``, ``"unit price"``.
* **Literals**: ``'strings'`` with ``''`` for a quote (anything else, newlines and NUL
  included, is taken verbatim: there are no backslash escapes); integers (``-12``); floats
  written as numerals (``1.5``, ``-0.5``, ``1e3``; a numeral too large for a float, such as
  ``1e999``, is infinity) or as the keyword ``NaN`` (equal to itself and above infinity, as
  the encoding orders it); ``TRUE``/``FALSE``; ``X'00ff'`` bytes (hex, SQL's notation);
  ``TIMESTAMP '2013-01-01T10:00:00Z'``, any ISO-8601 form
  :meth:`datetime.datetime.fromisoformat` reads, with ``Z`` or an offset required (a time
  without a zone is ambiguous), microseconds allowed, converted to UTC.
* **NULL** is not a value: ``a = NULL`` (never true in SQL) is rejected with a hint to use
  ``IS NULL``, and so is NULL in BETWEEN and IN.
* **LIKE** is prefix matching only, which is what a range index answers: the pattern is
  literal characters and one trailing ``%``. ``_`` and a ``%`` elsewhere are rejected rather
  than turned into a full scan; with ``ESCAPE 'c'``, ``c%``, ``c_`` and ``cc`` stand for the
  literal characters. A pattern without the trailing ``%`` is rejected: use ``=``.

Errors are :class:`~culvert_py.errors.QueryError` on one line with a ``line:column`` (1-based):
``syntax error at 1:13: unexpected 'AND' (expected a value)``; with ``column_types``,
``unknown column 'agee' at 1:1 (…)`` or ``cannot compare int column 'age' with string 'x' at
1:7`` pointing at the column or the literal.
"""

import functools
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from culvert_py.errors import QueryError
from culvert_py.predicate.bind import bind
from culvert_py.predicate.literal import Value
from culvert_py.predicate.tree import (
    FALSE,
    TRUE,
    And,
    Between,
    Compare,
    Contains,
    Expr,
    In,
    IsNull,
    Not,
    Or,
    Prefix,
    to_text,
)

# Keywords outrank NAME (priority 2) and stop at a word boundary, so `android` stays a name.
_GRAMMAR = r"""
start: or_expr

?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: _NOT not_expr                                -> not_
         | atom
?atom: condition
     | "(" or_expr ")"

?condition: column COMP_OP value                        -> compare
    | column _BETWEEN value _AND value                  -> between
    | column _NOT _BETWEEN value _AND value             -> not_between
    | column _IN "(" value ("," value)* ")"             -> in_
    | column _NOT _IN "(" value ("," value)* ")"        -> not_in
    | column _LIKE STRING (_ESCAPE STRING)?             -> like
    | column _NOT _LIKE STRING (_ESCAPE STRING)?        -> not_like
    | column _IS NULL                                   -> is_null
    | column _IS _NOT NULL                              -> is_not_null
    | _CONTAINS "(" column "," STRING ")"               -> contains
    | TRUE                                              -> true
    | FALSE                                             -> false

column: NAME | QUOTED_NAME

?value: STRING                                          -> string
      | NUMBER                                          -> number
      | TRUE                                            -> true_value
      | FALSE                                           -> false_value
      | NULL                                            -> null
      | TIMESTAMP STRING                                -> timestamp
      | HEX_STRING                                      -> hex
      | NAN                                             -> nan

_AND.2: /and\b/i
_OR.2: /or\b/i
_NOT.2: /not\b/i
_BETWEEN.2: /between\b/i
_IN.2: /in\b/i
_LIKE.2: /like\b/i
_ESCAPE.2: /escape\b/i
_IS.2: /is\b/i
NULL.2: /null\b/i
TRUE.2: /true\b/i
FALSE.2: /false\b/i
_CONTAINS.2: /contains\b/i
TIMESTAMP.2: /timestamp\b/i
NAN.2: /nan\b/i
HEX_STRING.3: /[xX]'[^']*'/

NAME: /[A-Za-z_][A-Za-z0-9_]*/
QUOTED_NAME: /"(?:[^"]|"")+"/
STRING: /'(?:[^']|'')*'/
NUMBER: /[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/
COMP_OP: /<=|>=|<>|!=|=|<|>/

%ignore /\s+/
"""

# How an error message names what the parser expected, most specific groups first.
_CONDITION_START = frozenset({"NAME", "QUOTED_NAME", "_NOT", "LPAR", "_CONTAINS", "TRUE", "FALSE"})
_VALUE_START = frozenset(
    {"STRING", "NUMBER", "TRUE", "FALSE", "NULL", "TIMESTAMP", "HEX_STRING", "NAN"}
)
_OPERATOR = frozenset({"COMP_OP", "_BETWEEN", "_NOT", "_IN", "_LIKE", "_IS"})
_EXPECTED_GROUPS = (
    (frozenset({"NAME", "LPAR", "_NOT"}), _CONDITION_START, "a condition"),
    (frozenset({"STRING", "NUMBER"}), _VALUE_START, "a value"),
    (frozenset({"COMP_OP"}), _OPERATOR, "an operator"),
    (frozenset({"NAME"}), frozenset({"NAME", "QUOTED_NAME"}), "a column"),
)
_EXPECTED_WORDS = {
    "$END": "end of input",
    "RPAR": "')'",
    "LPAR": "'('",
    "COMMA": "','",
    "STRING": "a string",
    "NUMBER": "a number",
}
_ORDER = ("a condition", "a column", "an operator", "a value", "a string")
_SHOWN_TOKEN = 30


@functools.cache
def _parser() -> Lark:
    """The LALR parser, built once per process on first use (it is stateless per parse).

    Positions come from the tokens, so the tree needs none (propagating them doubled the time
    to parse a long IN list)."""
    return Lark(_GRAMMAR, parser="lalr", lexer="basic")


def _pos(token: Token) -> str:
    return f"{token.line}:{token.column}"


def _end_pos(text: str) -> str:
    lines = text.split("\n")
    return f"{len(lines)}:{len(lines[-1]) + 1}"


def _show(text: str) -> str:
    text = str(text)
    return repr(text if len(text) <= _SHOWN_TOKEN else text[: _SHOWN_TOKEN - 1] + "…")


def _expected_text(names: set[str]) -> str:
    remaining = set(names)
    phrases = []
    for trigger, members, phrase in _EXPECTED_GROUPS:
        if trigger <= remaining:
            phrases.append(phrase)
            remaining -= members
    for name in sorted(remaining):
        phrases.append(_EXPECTED_WORDS.get(name, name.lstrip("_")))
    phrases.sort(key=lambda p: (_ORDER.index(p) if p in _ORDER else len(_ORDER), p))
    if len(phrases) <= 1:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + " or " + phrases[-1]


def _syntax_error(exc: UnexpectedInput, text: str) -> QueryError:
    if isinstance(exc, UnexpectedCharacters):
        where = f"{exc.line}:{exc.column}"
        char = exc.char
        if char == "'":
            what = "unterminated string (a quote inside a string is written '')"
        elif char == '"':
            what = 'unterminated or empty quoted name (a quote inside a name is written "")'
        else:
            what = f"unexpected character {char!r}"
        return QueryError(f"syntax error at {where}: {what}")
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            where, what = _end_pos(text), "unexpected end of input"
        else:
            where = _pos(token)
            what = "unexpected string" if token.type == "STRING" else f"unexpected {_show(token)}"
        expected = _expected_text(set(exc.accepts or exc.expected))
        if expected:
            what += f" (expected {expected})"
        return QueryError(f"syntax error at {where}: {what}")
    return QueryError(f"syntax error at {exc.line}:{exc.column}")


def _unquote(token: Token, quote: str) -> str:
    return token[1:-1].replace(quote + quote, quote)


class _Literal:
    """A value with the position of its token, until it is placed in a node."""

    __slots__ = ("is_null", "value", "where")

    def __init__(self, value: Any, where: str, is_null: bool = False) -> None:
        self.value = value
        self.where = where
        self.is_null = is_null


class _Builder(Transformer[Token, Expr]):
    """Turns one parse tree into predicate nodes, remembering where each part was written."""

    def __init__(self) -> None:
        super().__init__(visit_tokens=False)
        self.positions: dict[int, dict[str | int, str]] = {}

    def locate(self, node: Expr, part: str | int) -> str | None:
        return self.positions.get(id(node), {}).get(part)

    def _placed(self, node: Expr, column: tuple[str, str], *values: _Literal) -> Expr:
        where: dict[str | int, str] = {"column": column[1]}
        where.update({i: v.where for i, v in enumerate(values)})
        self.positions[id(node)] = where
        return node

    @staticmethod
    def _values(column: tuple[str, str], literals: list[_Literal], context: str) -> list[Value]:
        for literal in literals:
            if literal.is_null:
                raise QueryError(
                    f"NULL at {literal.where} in {context} of column {column[0]!r} never "
                    f"matches: use {to_text(IsNull(column[0]))}"
                )
        return [literal.value for literal in literals]

    # -- structure

    def start(self, children: list[Expr]) -> Expr:
        return children[0]

    def or_expr(self, children: list[Expr]) -> Expr:
        return Or(tuple(children))

    def and_expr(self, children: list[Expr]) -> Expr:
        return And(tuple(children))

    def not_(self, children: list[Expr]) -> Expr:
        return Not(children[0])

    def true(self, _: list[Token]) -> Expr:
        return TRUE

    def false(self, _: list[Token]) -> Expr:
        return FALSE

    # -- conditions

    def compare(self, children: list[Any]) -> Expr:
        column, op, literal = children
        if literal.is_null:
            fix = IsNull(column[0], negated=op in ("!=", "<>"))
            raise QueryError(
                f"comparison with NULL at {literal.where} is never true: use {to_text(fix)}"
            )
        node = Compare(column[0], str(op), literal.value)
        return self._placed(node, column, literal)

    def between(self, children: list[Any]) -> Expr:
        column, low, high = children
        values = self._values(column, [low, high], "BETWEEN")
        return self._placed(Between(column[0], *values), column, low, high)

    def not_between(self, children: list[Any]) -> Expr:
        return Not(self.between(children))

    def in_(self, children: list[Any]) -> Expr:
        column, *literals = children
        values = self._values(column, literals, "the IN list")
        return self._placed(In(column[0], tuple(values)), column, *literals)

    def not_in(self, children: list[Any]) -> Expr:
        return Not(self.in_(children))

    def like(self, children: list[Any]) -> Expr:
        column, pattern, *escape = children
        prefix = _like_prefix(pattern, escape[0] if escape else None)
        literal = _Literal(prefix, _pos(pattern))
        return self._placed(Prefix(column[0], prefix), column, literal)

    def not_like(self, children: list[Any]) -> Expr:
        return Not(self.like(children))

    def is_null(self, children: list[Any]) -> Expr:
        return self._placed(IsNull(children[0][0]), children[0])

    def is_not_null(self, children: list[Any]) -> Expr:
        return self._placed(IsNull(children[0][0], negated=True), children[0])

    def contains(self, children: list[Any]) -> Expr:
        column, word = children
        try:
            node = Contains(column[0], _unquote(word, "'"))
        except QueryError as exc:
            raise QueryError(f"{exc} at {_pos(word)}") from exc
        return self._placed(node, column, _Literal(node.word, _pos(word)))

    def column(self, children: list[Token]) -> tuple[str, str]:
        token = children[0]
        name = _unquote(token, '"') if token.type == "QUOTED_NAME" else str(token)
        return name, _pos(token)

    # -- literals

    def string(self, children: list[Token]) -> _Literal:
        return _Literal(_unquote(children[0], "'"), _pos(children[0]))

    def number(self, children: list[Token]) -> _Literal:
        token = children[0]
        text = str(token)
        if any(c in text for c in ".eE"):
            return _Literal(float(text), _pos(token))
        try:
            return _Literal(int(text), _pos(token))
        except ValueError as exc:  # beyond sys.get_int_max_str_digits()
            raise QueryError(f"integer literal at {_pos(token)} is too long") from exc

    def true_value(self, children: list[Token]) -> _Literal:
        return _Literal(True, _pos(children[0]))

    def false_value(self, children: list[Token]) -> _Literal:
        return _Literal(False, _pos(children[0]))

    def nan(self, children: list[Token]) -> _Literal:
        return _Literal(math.nan, _pos(children[0]))

    def null(self, children: list[Token]) -> _Literal:
        return _Literal(None, _pos(children[0]), is_null=True)

    def hex(self, children: list[Token]) -> _Literal:
        token = children[0]
        digits = token[2:-1]
        try:
            return _Literal(bytes.fromhex(digits), _pos(token))
        except ValueError as exc:
            raise QueryError(
                f"bytes literal {_show(token)} at {_pos(token)} is not an even number of hex digits"
            ) from exc

    def timestamp(self, children: list[Token]) -> _Literal:
        keyword, string = children
        text = _unquote(string, "'")
        where = _pos(keyword)
        try:
            value = datetime.fromisoformat(text)
        except ValueError as exc:
            raise QueryError(
                f"invalid timestamp {_show(text)} at {where}: expected ISO-8601 such as "
                "'2013-01-01T10:00:00Z'"
            ) from exc
        if value.utcoffset() is None:
            raise QueryError(
                f"timestamp {_show(text)} at {where} has no timezone: add Z for UTC or an "
                "offset such as +02:00"
            )
        try:
            return _Literal(value.astimezone(UTC), where)
        except OverflowError as exc:
            raise QueryError(f"timestamp {_show(text)} at {where} is out of range in UTC") from exc


def _like_prefix(pattern_token: Token, escape_token: Token | None) -> str:
    """The prefix a ``LIKE 'prefix%'`` pattern matches, or a QueryError saying why not."""
    pattern = _unquote(pattern_token, "'")
    head = f"LIKE pattern {_show(pattern)} at {_pos(pattern_token)}"
    escape = None
    if escape_token is not None:
        escape = _unquote(escape_token, "'")
        if len(escape) != 1:
            raise QueryError(
                f"ESCAPE {_show(escape)} at {_pos(escape_token)} must be exactly one character"
            )
    prefix: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == escape:
            following = pattern[i + 1 : i + 2]
            if following not in ("%", "_", escape) or not following:
                raise QueryError(
                    f"{head}: escape character {escape!r} must be followed by %, _ or itself"
                )
            prefix.append(following)
            i += 2
            continue
        if char == "%":
            if i == len(pattern) - 1:
                return "".join(prefix)
            raise QueryError(
                f"{head}: only prefix patterns such as 'abc%' are supported, with '%' as the "
                "last character (escape a literal '%' with ESCAPE)"
            )
        if char == "_":
            raise QueryError(
                f"{head}: '_' (any one character) is not supported, only prefix patterns such "
                "as 'abc%' (escape a literal '_' with ESCAPE)"
            )
        prefix.append(char)
        i += 1
    raise QueryError(f"{head} does not end with '%': use = for an exact match")


def parse(text: str, column_types: Mapping[str, str] | None = None) -> Expr:
    """Parse a predicate written in the text syntax (see the module docstring).

    :param text: the predicate, e.g. ``"origin = 'JFK' AND dep_delay > 120"``
    :param column_types: column name → type name of the table the predicate is for; when
        given, the predicate is checked and its literals coerced with
        :func:`culvert_py.predicate.bind.bind`
    :returns: the predicate tree (bound when ``column_types`` is given)
    :raises QueryError: a syntax error, a malformed literal or LIKE pattern, a comparison with
        NULL, a CONTAINS argument that is not one word, or (with ``column_types``) an unknown
        column or a type mismatch; the message gives the line:column of the offending token
    """
    if not isinstance(text, str):
        raise QueryError(f"a predicate must be a str, got {type(text).__name__} {text!r}")
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from exc
    builder = _Builder()
    try:
        expr = builder.transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, QueryError):
            # Unwrap lark's VisitError, keeping the cause the error was raised with.
            raise exc.orig_exc from exc.orig_exc.__cause__
        raise
    except RecursionError as exc:
        raise QueryError("predicate is nested too deeply") from exc
    if column_types is None:
        return expr
    return bind(expr, column_types, locate=builder.locate)
