"""Terms and definitions of a file: the fast scans find exactly what the documented patterns find."""

from __future__ import annotations

import re
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from tokenpilot._pack import features
from tokenpilot._pack.terms import identifier_terms, text_terms

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _reference_terms(text: str) -> dict[str, int]:
    """text_terms as the regular expression defines it (the words in order of first occurrence)."""
    counts: dict[str, int] = {}
    for word, count in Counter(_WORD.findall(text)).items():
        for term in identifier_terms(word):
            counts[term] = counts.get(term, 0) + count
    return counts


_CODE_LIKE = st.lists(
    st.sampled_from([*"aZ_9 0.(\n", "é", "ß", "\u2603", "\ud800", "HTTPAdapter", "parse_it", "x2"]),
    max_size=60,
).map("".join)


@given(st.one_of(_CODE_LIKE, st.text(max_size=200)))
@settings(max_examples=400)
def test_text_terms_equal_the_regular_expression_counts_in_the_same_order(text: str) -> None:
    got = text_terms(text)
    expected = _reference_terms(text)
    assert list(got.items()) == list(expected.items())


def test_a_word_starts_after_its_leading_digits_and_stops_at_non_ascii() -> None:
    assert text_terms("2parse_expr x9 99 naïve") == {
        "parse_expr": 1,
        "parse": 1,
        "expr": 1,
        "x9": 1,
        "na": 1,
        "ve": 1,
    }


# the definition pattern as documented: a line start (`^`, MULTILINE), indentation and the tail
_LINE_START_DEFINITION = re.compile(r"^[ \t]*" + features.DEFINITION_TAIL, re.MULTILINE)

_SOURCE_LIKE = st.lists(
    st.sampled_from(
        [
            "\n",
            " ",
            "\t",
            "def ",
            "class ",
            "export ",
            "async ",
            "func (r *T) ",
            "fn ",
            "pub(crate) ",
            "interface ",
            "enum ",
            "type ",
            "struct ",
            "trait ",
            "default ",
            "function* ",
            "func",
            "pub",
            "x",
            "é",
            "(",
            ")",
        ]
    ),
    max_size=40,
).map("".join)


@given(_SOURCE_LIKE)
@settings(max_examples=400)
def test_definitions_and_part_starts_equal_the_line_start_pattern(text: str) -> None:
    assert features._DEFINITION.findall("\n" + text) == _LINE_START_DEFINITION.findall(text)
    starts = [m.start() for m in features._DEFINITION.finditer("\n" + text)]
    assert starts == [m.start() for m in _LINE_START_DEFINITION.finditer(text)]


_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def _reference_identifier_terms(word: str) -> tuple[str, ...]:
    """identifier_terms as the documented rule says: the word, then its snake/camel parts."""
    from tokenpilot._pack.terms import STOPWORDS

    lowered = word.lower().strip("_")
    if len(lowered) < 2:
        return ()
    out = [] if lowered in STOPWORDS else [lowered]
    parts = [p.lower() for chunk in word.split("_") for p in _CAMEL.findall(chunk)]
    if len(parts) > 1:
        out.extend(p for p in parts if len(p) >= 2 and p not in STOPWORDS and p != lowered)
    return tuple(out)


_IDENTIFIER_LIKE = st.lists(
    st.sampled_from(["a", "ab", "Ab", "AB", "HTTP", "Adapter", "_", "__", "9", "x2", "é", "ÉT", "self"]),
    max_size=6,
).map("".join)


@given(st.one_of(_IDENTIFIER_LIKE, st.text(max_size=30)))
@settings(max_examples=500)
def test_identifier_terms_split_as_the_camel_and_snake_rule_does(word: str) -> None:
    assert identifier_terms.__wrapped__(word) == _reference_identifier_terms(word)
