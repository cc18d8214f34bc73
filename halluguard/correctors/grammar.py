"""Small English inflection helpers for the rewriter (no data files, deterministic).

>>> number_word(2), number_word(25), article_for("orange"), article_for("red")
('two', '25', 'an', 'a')
>>> verb_singular("are"), verb_singular("sit"), verb_plural("watches"), verb_plural("was")
('is', 'sits', 'watch', 'were')
>>> match_case("Dogs", "cat"), singular_noun("Knives"), plural_noun("person"), plural_noun("giraffe")
('Cat', 'Knife', 'people', 'giraffes')
"""

from __future__ import annotations

from halluguard.correctors.vocabulary import pluralize, singularize

_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty"
).split()

_TO_SINGULAR = {"are": "is", "were": "was", "have": "has", "do": "does", "'re": "'s", "’re": "’s"}
_TO_PLURAL = {"is": "are", "was": "were", "has": "have", "does": "do", "'s": "'re", "’s": "’re"}


def number_word(n: int) -> str:
    """The number in words up to twenty ("one", "twelve"), in digits above."""
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else str(n)


def match_case(template: str, word: str) -> str:
    """``word`` with the capitalisation of ``template`` (all caps, Title, lower)."""
    if len(template) > 1 and template.isupper():
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def article_for(word: str) -> str:
    """The article before ``word``, "a" or "an" (spelling rules with the usual exceptions).

    >>> [article_for(w) for w in ("MRI", "UFO", "urban", "urinal", "hour", "unicorn", "X-ray")]
    ['an', 'a', 'an', 'a', 'an', 'a', 'an']
    """
    low = word.lower()
    if low.startswith(("hour", "honest", "honor", "honour", "heir")):
        return "an"
    initialism = word.split("-")[0]
    if len(initialism) == 1 or (initialism.isupper() and len(initialism) <= 4):  # letter names: an MRI, a UFO
        return "an" if low[:1] in "aefhilmnorsx" else "a"
    if low.startswith(("uni", "use", "usu", "uk", "eu", "one", "once", "ura", "uri", "uro", "uru")):
        return "a"
    return "an" if low[:1] in "aeiou" else "a"


def singular_noun(word: str) -> str:
    return match_case(word, singularize(word.lower()))


def plural_noun(word: str) -> str:
    """The plural, keeping the capitalisation ("Knife" -> "Knives"; an initialism: "SUV" -> "SUVs")."""
    if word.isupper() and len(word) > 1:
        return pluralize(word)
    return match_case(word, pluralize(word.lower()))


def verb_singular(word: str) -> str:
    """Third person singular present of a plural verb form ("are" -> "is", "sit" -> "sits")."""
    low = word.lower()
    if low in _TO_SINGULAR:
        return match_case(word, _TO_SINGULAR[low])
    if low.endswith(("s", "x", "z", "ch", "sh", "o")):
        out = low + "es"
    elif low.endswith("y") and len(low) > 1 and low[-2] not in "aeiou":
        out = low[:-1] + "ies"
    else:
        out = low + "s"
    return match_case(word, out)


def verb_plural(word: str) -> str:
    """The plural present of a singular verb form ("is" -> "are", "sits" -> "sit")."""
    low = word.lower()
    if low in _TO_PLURAL:
        return match_case(word, _TO_PLURAL[low])
    if low.endswith("ies") and len(low) > 4:
        out = low[:-3] + "y"
    elif low.endswith(("sses", "xes", "zes", "ches", "shes", "oes")):
        out = low[:-2]
    elif low.endswith("s") and not low.endswith("ss"):
        out = low[:-1]
    else:
        out = low
    return match_case(word, out)
