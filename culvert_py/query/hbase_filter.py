"""Predicates as HBase filter-language strings, for full scans the region servers filter.

A full scan of the primary table can ask the region servers to drop rows before they cross
the network: the Thrift1 gateway reads ``TScan.filterString`` with HBase's ``ParseFilter``.
:func:`to_filter_string` writes what it can of a predicate in that language::

    age >= 30 AND name LIKE 'Jo%'
    → SingleColumnValueFilter('d', 'age', >=, 'binary:<encoded 30>', true, true) AND
      SingleColumnValueFilter('d', 'name', =, 'binaryprefix:<encoded Jo>', true, true)

**Why byte comparison is value comparison.** Each primary cell holds
:func:`~culvert_py.encoding.encode_value` of its value, an order-preserving encoding, so the
server's unsigned byte comparison of a cell with an encoded literal orders them as the values
order (NaN above ``+inf``, ``-0.0`` equal to ``0.0``, datetimes as instants), exactly like
:func:`~culvert_py.predicate.evaluate`. ``filterIfMissing=true`` drops rows without the cell:
a NULL never satisfies a comparison, as in SQL.

**Superset, never subset.** Pushdown is an optimisation: the caller re-evaluates the whole
predicate on every row the scan returns. A pushed filter therefore keeps every row the
predicate accepts and may keep more; the returned ``complete`` flag says when it keeps
exactly those. What is not pushed: ``IS NULL`` (no filter keeps rows *missing* a cell),
``CONTAINS`` (tokenising happens client-side) and ``NOT LIKE``; an AND pushes its pushable
part, an OR only when every branch restricts something.

**Escaping.** ``ParseFilter`` works on raw bytes: a literal runs from a single quote to the
next single quote that is not doubled, ``''`` inside it stands for one quote, and every other
byte (NUL, 0xFF, parentheses, commas, colons, ``AND``/``OR``/``SKIP``/``WHILE``, invalid
UTF-8) is taken as it is. So every literal here is quoted and has its quotes doubled, and the
result is ``bytes``: encoded values are not text.

The caller must not restrict the scan to columns that leave out a filtered column: a
``SingleColumnValueFilter`` that never sees its cell drops the row.
"""

from __future__ import annotations

from culvert_py.encoding import encode_str_prefix, encode_value
from culvert_py.errors import EncodingError, QueryError
from culvert_py.predicate import (
    And,
    Between,
    Compare,
    Const,
    Contains,
    Expr,
    IsNull,
    Not,
    Or,
    Prefix,
    normalize,
)
from culvert_py.schema import TableDef

__all__ = ["MATCH_NOTHING", "to_filter_string"]

MATCH_NOTHING: bytes = b"PageFilter(0)"
"""The filter for FALSE: a page of zero rows, so each region stops before reading a row."""

# ParseFilter reads the operator as a bare word, so only these six spellings exist.
_OPS: dict[str, bytes] = {
    "=": b"=",
    "!=": b"!=",
    "<": b"<",
    "<=": b"<=",
    ">": b">",
    ">=": b">=",
}


def to_filter_string(expr: Expr, table: TableDef) -> tuple[bytes | None, bool]:
    """Translate a predicate into an HBase filter-language string for a full primary scan.

    The predicate is normalised first (:func:`~culvert_py.predicate.normalize` leaves a
    normal form unchanged), so any predicate may be given; it should be bound to the table
    (:func:`~culvert_py.predicate.bind`) so its literals have the columns' types.

    ``TRUE`` gives ``(None, True)``: nothing to filter. ``FALSE`` gives
    ``(MATCH_NOTHING, True)``, a filter that ends every region's scan at once (the planner
    normally answers FALSE without scanning at all).

    :param expr: the predicate
    :param table: the table whose primary rows are scanned; gives the family and the types
    :returns: ``(filter, complete)``: the filter as bytes for ``TScan.filterString``, or
        ``None`` when nothing can be pushed; ``complete`` is ``True`` when the filter keeps
        exactly the rows the predicate matches, ``False`` when it may keep more
    :raises QueryError: a column the table does not have, a literal that does not encode as
        its column's type, or LIKE on a column that is not a str
    """
    pushed, complete = _Translator(table).translate(normalize(expr))
    if pushed is None:
        return None, complete
    return pushed.text, complete


class _Pushed:
    """A filter fragment; ``compound`` fragments need parentheses inside AND/OR."""

    __slots__ = ("compound", "text")

    def __init__(self, text: bytes, compound: bool = False) -> None:
        self.text = text
        self.compound = compound

    def operand(self) -> bytes:
        return b"(" + self.text + b")" if self.compound else self.text


def _quote(raw: bytes) -> bytes:
    """``raw`` as a filter-language literal that reads back as exactly ``raw``.

    ParseFilter ends a literal at the first quote not followed by another quote and turns
    each doubled quote into one; no other byte is special inside it.
    """
    return b"'" + raw.replace(b"'", b"''") + b"'"


class _Translator:
    """One :func:`to_filter_string` call: the table whose cells the filter reads."""

    def __init__(self, table: TableDef) -> None:
        self.table = table
        self.family = _quote(table.family.encode("utf-8"))

    def translate(self, expr: Expr) -> tuple[_Pushed | None, bool]:
        """``(fragment or None, complete)``; ``None`` means the rows are not restricted."""
        match expr:
            case Const(value):
                return (None, True) if value else (_Pushed(MATCH_NOTHING), True)
            case Compare(column, op, value):
                return self._compare(column, op, value), True
            case Between(column, low, high):
                both = self._compare(column, ">=", low).text + b" AND "
                both += self._compare(column, "<=", high).text
                return _Pushed(both, compound=True), True
            case Prefix(column, prefix):
                return self._prefix(column, prefix), True
            case IsNull(column, negated=True):
                self._type_of(column)
                # An empty binary prefix is a prefix of every value, so this keeps each row
                # that has the cell and, through filterIfMissing, no row that lacks it.
                return self._cell_filter(column, b"=", b"binaryprefix:"), True
            case IsNull(column) | Contains(column) | Not(Prefix(column) | Contains(column)):
                self._type_of(column)
                return None, False
            case And(children):
                return self._and(children)
            case Or(children):
                return self._or(children)
        raise QueryError(f"cannot push {expr!r} to HBase: not a normalised predicate")

    def _and(self, children: tuple[Expr, ...]) -> tuple[_Pushed | None, bool]:
        parts: list[_Pushed] = []
        complete = True
        for child in children:
            pushed, child_complete = self.translate(child)
            complete = complete and child_complete
            if pushed is not None:
                parts.append(pushed)
        return _junction(parts, b" AND "), complete

    def _or(self, children: tuple[Expr, ...]) -> tuple[_Pushed | None, bool]:
        # Every branch is translated even after one fails to push, so that a bad column
        # raises wherever it sits in the predicate.
        results = [self.translate(child) for child in children]
        parts = [pushed for pushed, _ in results if pushed is not None]
        if len(parts) < len(children):
            # One unrestricted branch lets every row through the OR.
            return None, False
        return _junction(parts, b" OR "), all(complete for _, complete in results)

    def _type_of(self, column: str) -> str:
        try:
            return self.table.columns[column]
        except KeyError:
            known = ", ".join(self.table.columns)
            raise QueryError(
                f"{self.table.name}: unknown column {column!r} in a pushed filter (known: {known})"
            ) from None

    def _compare(self, column: str, op: str, value: object) -> _Pushed:
        type_name = self._type_of(column)
        try:
            encoded = encode_value(value, type_name, column=column)
        except EncodingError as exc:
            raise QueryError(
                f"{self.table.name}: cannot push {op} {value!r} on {type_name} column "
                f"{column!r} to HBase: {exc} (bind the predicate to the table first)"
            ) from None
        return self._cell_filter(column, _OPS[op], b"binary:" + encoded)

    def _prefix(self, column: str, prefix: str) -> _Pushed:
        type_name = self._type_of(column)
        if type_name != "str":
            raise QueryError(
                f"{self.table.name}: cannot push LIKE on {type_name} column {column!r} "
                "(prefix matching needs a str column)"
            )
        try:
            encoded = encode_str_prefix(prefix)
        except EncodingError as exc:
            raise QueryError(
                f"{self.table.name}: cannot push LIKE {prefix!r} on column {column!r}: {exc}"
            ) from None
        return self._cell_filter(column, b"=", b"binaryprefix:" + encoded)

    def _cell_filter(self, column: str, op: bytes, comparator: bytes) -> _Pushed:
        # filterIfMissing=true: a row without the cell (NULL) fails, as SQL comparisons do.
        # latestVersionOnly=true: only the visible version decides, as reads see it.
        return _Pushed(
            b"SingleColumnValueFilter("
            + self.family
            + b", "
            + _quote(column.encode("utf-8"))
            + b", "
            + op
            + b", "
            + _quote(comparator)
            + b", true, true)"
        )


def _junction(parts: list[_Pushed], operator: bytes) -> _Pushed | None:
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    # Every compound operand is parenthesised: ParseFilter's precedence (AND over OR) would
    # do, but its handling of mixed operators inside one pair of parentheses is fragile.
    return _Pushed(operator.join(p.operand() for p in parts), compound=True)
