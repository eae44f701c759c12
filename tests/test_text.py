"""Tokenisation shared by text indexes (write side) and CONTAINS (query side)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from culvert_py.errors import QueryError
from culvert_py.text import MAX_TOKEN_LENGTH, normalize_token, tokenize


def test_tokenize_splits_on_non_word_characters_and_case_folds():
    assert tokenize("Hello, World! (hello-world)") == ["hello", "world"]


def test_tokenize_keeps_digits_and_underscores_inside_words():
    assert tokenize("snake_case 42 v2.0") == ["snake_case", "42", "v2", "0"]


def test_tokenize_deduplicates_keeping_first_occurrence_order():
    assert tokenize("b a B c A b") == ["b", "a", "c"]


@pytest.mark.parametrize("text", ["", "   ", "!?.,;-- ''", "\x00\n\t"])
def test_tokenize_of_text_without_words_is_empty(text):
    assert tokenize(text) == []


def test_tokenize_case_folds_beyond_lower():
    assert tokenize("Straße STRASSE strasse") == ["strasse"]
    assert tokenize("ΣΊΣΥΦΟΣ σίσυφος") == ["σίσυφοσ"]


def test_tokenize_applies_nfkc():
    # full-width letters, a ligature, and decomposed vs precomposed e-acute
    assert tokenize("ＡＢＣ ﬁne cafe\u0301 café") == ["abc", "fine", "café"]


def test_tokenize_keeps_combining_marks_inside_words():
    # Python's \w does not match vowel signs and viramas: plain \w+ would split these words.
    assert tokenize("हिन्दी भाषा") == ["हिन्दी", "भाषा"]
    assert tokenize("ภาษาไทย") == ["ภาษาไทย"]


def test_tokenize_removes_invisible_format_characters():
    assert tokenize("co\u00adoperate zero\u200bwidth\u200d") == ["cooperate", "zerowidth"]


def test_tokenize_drops_tokens_longer_than_the_index_limit():
    kept, dropped = "k" * MAX_TOKEN_LENGTH, "d" * (MAX_TOKEN_LENGTH + 1)
    assert tokenize(f"a {kept} {dropped} b") == ["a", kept, "b"]


def test_tokenize_rejects_non_str():
    with pytest.raises(QueryError, match="expected str"):
        tokenize(b"bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("word", "token"),
    [("Hello", "hello"), ("STRASSE", "strasse"), ("Straße", "strasse"), ("ＡＢＣ", "abc")],
)
def test_normalize_token_normalises_like_tokenize(word, token):
    assert normalize_token(word) == token
    assert tokenize(word) == [token]


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("two words", "'two words' is not a single word.*\\['two', 'words'\\]"),
        ("", "'' is not a single word.*no word characters"),
        ("c++", "'c\\+\\+' is not a single word"),
        (" padded", "' padded' is not a single word"),
        ("!!", "'!!' is not a single word.*no word characters"),
        ("x" * 65, "65 characters long.*at most 64.*never match"),
    ],
)
def test_normalize_token_rejects_anything_but_one_word(word, message):
    with pytest.raises(QueryError, match=message):
        normalize_token(word)


def test_normalize_token_rejects_non_str():
    with pytest.raises(QueryError, match="expected a str word"):
        normalize_token(3)  # type: ignore[arg-type]


@given(st.text())
def test_tokens_are_fixed_points_of_normalisation(text):
    tokens = tokenize(text)
    assert len(tokens) == len(set(tokens))
    for token in tokens:
        assert 1 <= len(token) <= MAX_TOKEN_LENGTH
        assert normalize_token(token) == token
    assert tokenize(" ".join(tokens)) == tokens


@given(st.text(), st.text(), st.text())
def test_every_word_a_text_contains_can_be_searched_for(before, word, after):
    try:
        token = normalize_token(word)
    except QueryError:
        return
    assert token in tokenize(f"{before} {word} {after}")
