"""Count claims: the words that quantify a mention ("two", "at least 13", "a couple of", "several").

>>> from types import SimpleNamespace as Token
>>> number_value(Token(lower_="twelve")), number_value(Token(lower_="1,200")), number_value(Token(lower_="a"))
(12, 1200, None)
"""

from __future__ import annotations

from typing import Any

from halluguard.correctors.mentions import Mention, group_root, left_modifiers

NUMBER_WORDS: dict[str, int] = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "dozen": 12,
}  # fmt: skip
_EXACT_WORDS = {"both": 2, "single": 1, "lone": 1, "solitary": 1}
_MIN_WORDS = {"few": 2, "several": 3, "many": 2, "multiple": 2, "numerous": 2, "various": 2, "countless": 2}
_GROUP_NOUNS = {
    "pair": 2, "couple": 2, "dozen": 12, "trio": 3, "group": 0, "herd": 0, "flock": 0, "crowd": 0,
    "bunch": 0, "lot": 0, "lots": 0, "number": 0, "variety": 0, "row": 0, "line": 0, "stack": 0,
    "pile": 0, "team": 0, "fleet": 0, "collection": 0, "cluster": 0, "assortment": 0, "pack": 0,
    "set": 0, "dozens": 0, "plenty": 0, "array": 0, "series": 0, "bundle": 0, "swarm": 0,
}  # fmt: skip
#: labels whose object is a pair ("a pair of skis" is one detection, not two)
PAIRED_LABELS = frozenset({"skis", "scissors"})
_APPROXIMATE = frozenset("about around approximately roughly nearly almost some up under maybe".split())


def number_value(token: Any) -> int | None:
    """The integer a number token names ("two", "13", "a dozen"), else ``None``."""
    low = token.lower_.replace(",", "")
    if low.isdigit():
        return int(low)
    return NUMBER_WORDS.get(low)


def count_of(doc: Any, m: Mention) -> tuple[int, int | None, int | None] | None:
    """``(start_char, count, count_min)`` of the quantifier on mention ``m``, or ``None``."""
    found = quantifier(doc, m)
    return None if found is None else (found[0], found[2], found[3])


def quantifier(doc: Any, m: Mention) -> tuple[int, int, int | None, int | None] | None:
    """``(start_char, end_char, count, count_min)`` of the words that quantify mention ``m``
    ("two", "at least 13", "a couple of", "several"), or ``None``."""
    head = doc[m.last]
    for child in left_modifiers(doc, m):
        low = child.lower_
        end = child.idx + len(child.text)
        if child.dep_ in ("nummod", "quantmod") or (
            child.tag_ == "CD" and child.dep_ in ("amod", "compound")
        ):
            if low == "few":
                return _with_article(doc, child), end, None, 2
            value = number_value(child)
            if value is None:
                continue
            bounded = _bounded(doc, child, value)
            return None if bounded is None else (bounded[0], end, bounded[1], bounded[2])
        if child.dep_ in ("amod", "det", "predet", "advmod") and (low in _EXACT_WORDS or low in _MIN_WORDS):
            start = _with_article(doc, child)
            if low in _EXACT_WORDS:
                if _EXACT_WORDS[low] == 1 and m.plural:
                    continue
                return start, end, _EXACT_WORDS[low], None
            if not m.plural:
                continue
            return start, end, None, _MIN_WORDS[low]
    # "a pair of skis", "a couple of dogs", "a group of people", "a herd of elephants"
    root = group_root(head)
    if root.dep_ == "pobj" and root.head.lower_ == "of" and root.head.head.lower_ in _GROUP_NOUNS:
        of = root.head
        quantity = of.head
        if any(c.dep_ == "nummod" for c in quantity.children) or quantity.i > root.i:
            return None
        value = _GROUP_NOUNS[quantity.lower_]
        if quantity.lower_ == "pair" and m.label in PAIRED_LABELS:
            return None  # a pair of skis is one "skis"
        start, end = quantity.left_edge.idx, of.idx + len(of.text)
        if value:
            return start, end, value, None
        return (start, end, None, 2) if m.plural else None
    return None


def _with_article(doc: Any, token: Any) -> int:
    """Start of "a few"/"a single": include the article right before the quantifier."""
    if token.i > 0 and doc[token.i - 1].lower_ in ("a", "an", "the"):
        return doc[token.i - 1].idx
    return token.idx


def _bounded(doc: Any, number: Any, value: int) -> tuple[int, int | None, int | None] | None:
    """Apply "at least", "more than", "over", "about" ... to a number; ``None`` when approximate."""
    words = [t for t in number.subtree if t.i < number.i]
    lows = [t.lower_ for t in words]
    start = words[0].idx if words else number.idx
    if "least" in lows:
        return start, None, value
    if "more" in lows or "over" in lows:
        return start, None, value + 1
    if any(w in _APPROXIMATE or w in ("than", "most", "fewer", "less") for w in lows):
        return None
    if number.i > 0 and doc[number.i - 1].lower_ in _APPROXIMATE | {"than"}:
        return None
    return start, value, None
