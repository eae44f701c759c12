"""Tokenisation of text into the words a text index stores (the same words CONTAINS looks up).

A text index writes one entry per token of a column value, and ``CONTAINS(col, 'word')``
scans for one token, so both sides must turn text into tokens the same way: this module is
that one way. A query matches a row exactly when the normalised query word is one of the
row value's tokens.

The steps, in order:

1. **NFKC** normalisation, so that compatibility variants are one word: full-width ``ＡＢＣ``
   is ``ABC``, the ligature ``ﬁ`` is ``fi``, a decomposed ``e`` + combining acute is ``é``.
2. **Case folding** with :meth:`str.casefold` (stronger than ``lower``: ``Straße`` and
   ``STRASSE`` fold to the same ``strasse``), then NFKC again, because folding can leave
   text that is no longer NFKC.
3. **Format characters are removed** (Unicode category Cf: soft hyphen, zero-width joiner and
   non-joiner, directional marks, BOM): they are invisible, and ``co\\u00adoperate`` is the
   word ``cooperate``.
4. **Words** are runs of word characters (``\\w`` of Python's ``re``: letters, digits, ``_``)
   that may also contain combining marks (Unicode categories Mn, Mc, Me). Python's ``\\w``
   does not match marks, so plain ``\\w+`` would cut Hindi ``हिन्दी`` into ``ह``, ``न``, ``द``;
   a mark is never the first character of a word. Everything else separates words.
5. Tokens longer than :data:`MAX_TOKEN_LENGTH` characters are **dropped**. Each token becomes
   part of an index row key (salt, token, primary key), and HBase repeats row keys in every
   cell and block index; such long "words" are almost always hashes, base64 or URLs that
   nobody searches for word by word, and they would bloat the index for nothing.
6. Duplicates are removed, keeping the first occurrence: a row has one index entry per
   distinct token.

Tokenisation depends on the Unicode version of the running Python (``unicodedata``):
characters assigned in a later version may tokenise differently there, so rebuild text
indexes after a Python upgrade if text in newly assigned characters matters.
"""

import functools
import re
import sys
import unicodedata

from culvert_py.errors import QueryError

MAX_TOKEN_LENGTH: int = 64
"""Longest token kept, in characters (code points) after normalisation."""

# Planes that hold combining marks and format characters; planes 2-3 hold only CJK ideographs
# and 15-16 are private use. Scanning just these keeps the one-off cost near 20 ms.
_SCANNED = (range(0x20000), range(0xE0000, 0xE1000))


def _char_class(code_points: list[int]) -> str:
    """A regex character class matching exactly ``code_points`` (sorted), as ranges."""
    parts = []
    start = prev = code_points[0]
    for cp in [*code_points[1:], sys.maxunicode + 2]:
        if cp != prev + 1:
            parts.append(re.escape(chr(start)))
            if prev != start:
                parts.append("-" + re.escape(chr(prev)))
            start = cp
        prev = cp
    return "[" + "".join(parts) + "]"


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The (word, format-character) patterns, built on first use rather than at import."""
    marks: list[int] = []
    formats: list[int] = []
    for block in _SCANNED:
        for cp in block:
            category = unicodedata.category(chr(cp))
            if category[0] == "M":
                marks.append(cp)
            elif category == "Cf":
                formats.append(cp)
    word = re.compile(r"\w(?:\w|" + _char_class(marks) + ")*")
    return word, re.compile(_char_class(formats))


def _fold(text: str) -> str:
    _, formats = _patterns()
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return formats.sub("", folded)


def tokenize(text: str) -> list[str]:
    """Split text into the distinct normalised words a text index stores for it.

    :param text: the column value
    :returns: the tokens (NFKC-normalised, case-folded words of at most
        :data:`MAX_TOKEN_LENGTH` characters), each once, in order of first occurrence; an
        empty list when the text has no words
    :raises QueryError: ``text`` is not a str
    """
    if not isinstance(text, str):
        raise QueryError(f"cannot tokenize {type(text).__name__} {text!r}: expected str")
    word, _ = _patterns()
    tokens = (m.group() for m in word.finditer(_fold(text)))
    return list(dict.fromkeys(t for t in tokens if len(t) <= MAX_TOKEN_LENGTH))


def normalize_token(word: str) -> str:
    """Normalise one query word exactly as :func:`tokenize` normalises the words of a text.

    ``CONTAINS(title, 'Straße')`` looks up ``normalize_token('Straße') == 'strasse'``.

    :param word: the word to look up
    :returns: the normalised word, the only token :func:`tokenize` gives for it
    :raises QueryError: ``word`` is not a str, or is not exactly one word (empty, only
        punctuation, several words, a word with punctuation such as ``'c++'``), or is longer
        than :data:`MAX_TOKEN_LENGTH` characters (no text index stores it)
    """
    if not isinstance(word, str):
        raise QueryError(f"cannot search for {type(word).__name__} {word!r}: expected a str word")
    pattern, _ = _patterns()
    folded = _fold(word)
    if pattern.fullmatch(folded) is None:
        tokens = [m.group() for m in pattern.finditer(folded)]
        found = f"it tokenizes to {tokens}" if tokens else "it has no word characters"
        raise QueryError(f"{word!r} is not a single word to search for: {found}")
    if len(folded) > MAX_TOKEN_LENGTH:
        raise QueryError(
            f"{word[:20]!r}... is {len(folded)} characters long; text indexes keep words of at "
            f"most {MAX_TOKEN_LENGTH}, so it can never match"
        )
    return folded
