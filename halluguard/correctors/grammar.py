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

    >>> [article_for(w) for w in ("MRI", "UFO", "urban", "urinal", "hour", "unicorn", "X-ray", "8-year-old")]
    ['an', 'a', 'an', 'a', 'an', 'a', 'an', 'an']
    >>> [article_for(w) for w in ("ewe", "utensil", "unimportant", "one", "onion", "houri", "SUV", "LED")]
    ['a', 'a', 'an', 'a', 'an', 'a', 'an', 'an']
    """
    low = word.lower()
    if low[:1].isdigit():  # read aloud: an 8, an 11-year-old, an 18-wheeler, an 80
        digits = "".join(c for c in low.split("-")[0] if c.isdigit())
        eleven_or_eighteen = digits[:2] in ("11", "18") and len(digits) % 3 == 2
        return "an" if digits.startswith("8") or eleven_or_eighteen else "a"
    if low.startswith(("hour", "honest", "honor", "honour", "heir")) and not low.startswith("houri"):
        return "an"
    initialism = word.split("-")[0]
    if len(initialism) == 1 or (initialism.isupper() and len(initialism) <= 4):  # letter names: an MRI, a UFO
        return "an" if low[:1] in "aefhilmnorsx" else "a"
    if low.startswith(_UN_PREFIXED):  # the prefix un-: an unimportant, an uninvited guest
        return "an"
    if low.startswith(_YOU_OR_WON) and not low.startswith(("onei", "oner")):
        return "a"
    return "an" if low[:1] in "aeiou" else "a"


#: spellings read with a consonant first ("a unicorn", "a ewe", "a one-way street")
_YOU_OR_WON = ("uni", "use", "usu", "uk", "eu", "ewe", "one", "once", "ura", "uri", "uro", "uru", "uti",
               "ute", "uto", "ubi", "uku", "uvu", "unanim")
#: "uni" spellings that are the prefix un- ("an unidentified object")
_UN_PREFIXED = ("unim", "unin", "unid", "unint")


def singular_noun(word: str) -> str:
    """The singular of a plural noun, keeping the capitalisation ("Knives" -> "Knife", "SUVs" -> "SUV").

    >>> [singular_noun(w) for w in ("dogs", "people", "mice", "buses", "halves", "crises", "quizzes", "TVs")]
    ['dog', 'person', 'mouse', 'bus', 'half', 'crisis', 'quiz', 'TV']
    """
    if len(word) > 2 and word.endswith("s") and word[:-1].isupper():  # an initialism: SUVs, MRIs
        return word[:-1]
    low = word.lower()
    return match_case(word, _SINGULAR.get(low) or singularize(low))


#: plurals that the CHAIR singulariser (kept as the official metric has it) does not undo
_SINGULAR = {"crises": "crisis", "theses": "thesis", "oases": "oasis", "analyses": "analysis",
             "hypotheses": "hypothesis", "parentheses": "parenthesis", "diagnoses": "diagnosis",
             "quizzes": "quiz", "bookies": "bookie", "budgies": "budgie", "prairies": "prairie",
             "titmice": "titmouse"}


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
