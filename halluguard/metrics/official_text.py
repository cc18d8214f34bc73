"""The text processing of the official metric scripts, reproduced so that the metrics agree with them.

- :func:`word_tokenize`: NLTK's ``word_tokenize``, which both the CHAIR script (``chair.py`` of
  LisaAnne/Hallucination, Maxlinn/CHAIR-metric-standalone and OPERA, line 207:
  ``nltk.word_tokenize(caption.lower())``) and AMBER's ``inference.py`` (line 32) call. It is NLTK's own
  code: its Treebank word tokenizer on the sentences of its Punkt sentence splitter. Where NLTK's
  trained English Punkt model is installed (``nltk.download("punkt_tab")``) it is used, exactly as
  ``word_tokenize`` uses it; without it, Punkt runs with no trained parameters, which splits sentences
  the same way except after the abbreviations the English model learned ("mr.", "st.", ...): none of
  them is an object word, so CHAIR and AMBER come out the same either way.
- :func:`singularize`: ``pattern.en.singularize`` (clips/pattern 3.6, ``pattern/text/en/inflect.py``,
  the ``singularize`` function and its tables), which the CHAIR script applies to every token (line 208),
  quirks included: "bus" -> "bu", "glass" -> "glas", "ties" -> "ty", "collies" stays "collies".

>>> word_tokenize("a man on a bench'smid a bike/scooter. two dogs' toys")
['a', 'man', 'on', 'a', "bench'smid", 'a', 'bike/scooter', '.', 'two', 'dogs', "'", 'toys']
>>> [singularize(w) for w in ["buses", "bus", "women", "knives", "collies", "'s", "mothers-in-law"]]
['bus', 'bu', 'woman', 'knife', 'collies', "'", 'mother-in-law']
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["singularize", "token_spans", "treebank_tokenize", "word_tokenize"]


# --------------------------------------------------------------------------- tokenizer (NLTK)


@lru_cache(maxsize=1)
def _sentence_splitter():
    """NLTK's Punkt sentence splitter: the trained English model when installed, else untrained."""
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    try:
        from nltk.tokenize import _get_punkt_tokenizer

        return _get_punkt_tokenizer("english")
    except (LookupError, ImportError, OSError):
        return PunktSentenceTokenizer()


# NLTK's NLTKWordTokenizer (nltk/tokenize/destructive.py, NLTK 3.9), its regular expressions in order,
# on Python's re module (NLTK compiles them with the slower ``regex``); tests/metrics checks the two
# agree token for token.
_STARTING_QUOTES = [
    (re.compile("([«“‘„]|[`]+)"), r" \1 "),
    (re.compile(r"^\""), r"``"),
    (re.compile(r"(``)"), r" \1 "),
    (re.compile(r"([ \(\[{<])(\"|\'{2})"), r"\1 `` "),
    (re.compile(r"(?i)(?<!\w)(\')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)"), r"\1 "),
]
_ENDING_QUOTES = [
    (re.compile("([»”’])"), r" \1 "),
    (re.compile(r"''"), " '' "),
    (re.compile(r'"'), " '' "),
    (re.compile(r"\s+"), " "),
    (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
    (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
]
_PUNCTUATION = [
    (re.compile(r'([^\.])(\.)([\]\)}>"\'' "»”’ " r"]*)\s*$"), r"\1 \2 \3 "),
    (re.compile(r"([:,])([^\d])"), r" \1 \2"),
    (re.compile(r"([:,])$"), r" \1 "),
    (re.compile(r"\.{2,}"), r" \g<0> "),
    (re.compile(r"[;@#$%&]"), r" \g<0> "),
    (re.compile(r"[\u2012-\u2015]"), r" \g<0> "),
    (re.compile(r'([^\.])(\.)([\]\)}>"\']*)\s*$'), r"\1 \2\3 "),
    (re.compile(r"[?!]"), r" \g<0> "),
    (re.compile(r"([^'])' "), r"\1 ' "),
    (re.compile(r"[*]"), r" \g<0> "),
]
_PARENS_BRACKETS = (re.compile(r"[\]\[\(\)\{\}\<\>]"), r" \g<0> ")
_DOUBLE_DASHES = (re.compile(r"--"), r" -- ")
_CONTRACTIONS = [
    re.compile(pattern)
    for pattern in (
        r"(?i)\b(can)(?#X)(not)\b", r"(?i)\b(d)(?#X)('ye)\b", r"(?i)\b(gim)(?#X)(me)\b",
        r"(?i)\b(gon)(?#X)(na)\b", r"(?i)\b(got)(?#X)(ta)\b", r"(?i)\b(lem)(?#X)(me)\b",
        r"(?i)\b(more)(?#X)('n)\b", r"(?i)\b(wan)(?#X)(na)(?=\s)", r"(?i) ('t)(?#X)(is)\b",
        r"(?i) ('t)(?#X)(was)\b",
    )
]  # fmt: skip


def treebank_tokenize(sentence: str) -> list[str]:
    """``NLTKWordTokenizer().tokenize(sentence)``: NLTK's word tokenizer on one sentence."""
    text = sentence
    for regexp, substitution in _STARTING_QUOTES:
        text = regexp.sub(substitution, text)
    for regexp, substitution in _PUNCTUATION:
        text = regexp.sub(substitution, text)
    for regexp, substitution in (_PARENS_BRACKETS, _DOUBLE_DASHES):
        text = regexp.sub(substitution, text)
    text = " " + text + " "
    for regexp, substitution in _ENDING_QUOTES:
        text = regexp.sub(substitution, text)
    for regexp in _CONTRACTIONS:
        text = regexp.sub(r" \1 \2 ", text)
    return text.split()


def token_spans(text: str) -> list[tuple[str, int, int]]:
    """``(token, start, end)`` of each token of :func:`word_tokenize`, with offsets into ``text``."""
    out: list[tuple[str, int, int]] = []
    for start, end in _sentence_splitter().span_tokenize(text):
        sentence = text[start:end]
        tokens = treebank_tokenize(sentence)
        out.extend((token, start + s, start + e) for token, (s, e) in zip(tokens, _align(sentence, tokens)))
    return out


def word_tokenize(text: str) -> list[str]:
    """The tokens of NLTK's ``word_tokenize(text)``."""
    return [token for token, _, _ in token_spans(text)]


def _align(text: str, tokens: list[str]) -> list[tuple[int, int]]:
    """Each token's span in ``text``, searched in order (NLTK writes quotes as `` and '')."""
    spans, position = [], 0
    for token in tokens:
        found = text.find(token, position)
        if found < 0 and token in ("``", "''"):
            found = min((i for i in (text.find('"', position), text.find("''", position)) if i >= 0), default=-1)
            token = text[found] if found >= 0 and text[found] == '"' else token
        if found < 0:
            found = position
        spans.append((found, found + len(token)))
        position = found + len(token)
    return spans


# --------------------------------------------------------------------------- pattern.en.singularize

_PREPOSITIONS = frozenset(
    "about before during of till above behind except off to across below for on under after beneath "
    "from onto until among beside in out unto around besides into over upon at between near since with "
    "athwart betwixt beyond but by".split()
)
_UNINFLECTED = (
    "bison bream breeches britches carp chassis christmas clippers cod contretemps corps debris diabetes "
    "djinn eland elk flounder gallows georgia graffiti headquarters herpes high-jinks homework innings "
    "jackanapes mackerel measles mews mumps news pincers pliers proceedings rabies salmon scissors series "
    "shears species swine swiss trout tuna whiting wildebeest "
    # singular_uncountable
    "advice bread butter cheese electricity equipment fruit furniture garbage gravel happiness information "
    "ketchup knowledge love luggage mathematics mayonnaise meat mustard news progress research rice sand "
    "software understanding water"
).split()
#: A word that is the ending of an uninflected word comes back as it is ("scissors", but also "ice").
_KEEP = frozenset(word[i:] for word in _UNINFLECTED for i in range(len(word) + 1))
_IE = (
    "alergie cutie hoagie newbie softie veggie auntie doggie hottie nightie sortie weenie beanie eyrie "
    "indie oldie stoolie yuppie birdie freebie junkie ^pie sweetie zombie bogie goonie laddie pixie techie "
    "bombie groupie laramie quickie ^tie collie hankie lingerie reverie toughie cookie hippie meanie rookie "
    "valkyrie"
).split()
_IRREGULAR = (  # in the source's order: the first ending that matches wins
    ("atlantes", "atlas"), ("atlases", "atlas"), ("axes", "axe"), ("beeves", "beef"), ("brethren", "brother"),
    ("children", "child"), ("corpora", "corpus"), ("corpuses", "corpus"), ("ephemerides", "ephemeris"),
    ("feet", "foot"), ("ganglia", "ganglion"), ("geese", "goose"), ("genera", "genus"), ("genii", "genie"),
    ("graffiti", "graffito"), ("helves", "helve"), ("kine", "cow"), ("leaves", "leaf"), ("loaves", "loaf"),
    ("men", "man"), ("mongooses", "mongoose"), ("monies", "money"), ("moves", "move"), ("mythoi", "mythos"),
    ("numena", "numen"), ("occipita", "occiput"), ("octopodes", "octopus"), ("opera", "opus"),
    ("opuses", "opus"), ("our", "my"), ("oxen", "ox"), ("penes", "penis"), ("penises", "penis"),
    ("people", "person"), ("sexes", "sex"), ("soliloquies", "soliloquy"), ("teeth", "tooth"),
    ("testes", "testis"), ("trilbys", "trilby"), ("turves", "turf"), ("zoa", "zoon"),
)  # fmt: skip
_RULES = [
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"(?i)(.)ae$", r"\1a"), (r"(?i)(.)itis$", r"\1itis"), (r"(?i)(.)eaux$", r"\1eau"),
        (r"(?i)(quiz)zes$", r"\1"), (r"(?i)(matr)ices$", r"\1ix"), (r"(?i)(ap|vert|ind)ices$", r"\1ex"),
        (r"(?i)^(ox)en", r"\1"), (r"(?i)(alias|status)es$", r"\1"), (r"(?i)([octop|vir])i$", r"\1us"),
        (r"(?i)(cris|ax|test)es$", r"\1is"), (r"(?i)(shoe)s$", r"\1"), (r"(?i)(o)es$", r"\1"),
        (r"(?i)(bus)es$", r"\1"), (r"(?i)([m|l])ice$", r"\1ouse"), (r"(?i)(x|ch|ss|sh)es$", r"\1"),
        (r"(?i)(m)ovies$", r"\1ovie"), (r"(?i)(.)ombies$", r"\1ombie"), (r"(?i)(s)eries$", r"\1eries"),
        (r"(?i)([^aeiouy]|qu)ies$", r"\1y"), (r"([aeo]l)ves$", r"\1f"), (r"([^d]ea)ves$", r"\1f"),
        (r"arves$", "arf"), (r"erves$", "erve"), (r"([nlw]i)ves$", r"\1fe"), (r"(?i)([lr])ves$", r"\1f"),
        (r"([aeo])ves$", r"\1ve"), (r"(?i)(sive)s$", r"\1"), (r"(?i)(tive)s$", r"\1"), (r"(?i)(hive)s$", r"\1"),
        (r"(?i)([^f])ves$", r"\1fe"), (r"(?i)(^analy)ses$", r"\1sis"),
        (r"(?i)((a)naly|(b)a|(d)iagno|(p)arenthe|(p)rogno|(s)ynop|(t)he)ses$", r"\1\2sis"),
        (r"(?i)(.)opses$", r"\1opsis"), (r"(?i)(.)yses$", r"\1ysis"), (r"(?i)(h|d|r|o|n|b|cl|p)oses$", r"\1ose"),
        (r"(?i)(fruct|gluc|galact|lact|ket|malt|rib|sacchar|cellul)ose$", r"\1ose"),
        (r"(?i)(.)oses$", r"\1osis"), (r"(?i)([ti])a$", r"\1um"), (r"(?i)(n)ews$", r"\1ews"), (r"(?i)s$", ""),
    )
]  # fmt: skip


@lru_cache(maxsize=16384)
def singularize(word: str) -> str:
    """``pattern.en.singularize(word)``: the singular the CHAIR script counts (see the module docstring)."""
    if "-" in word:  # compounds with a preposition: mothers-in-law
        parts = word.split("-")
        if len(parts) > 1 and parts[1] in _PREPOSITIONS:
            return singularize(parts[0]) + "-" + "-".join(parts[1:])
    if word.endswith("'"):  # dogs' => dog's
        return singularize(word[:-1]) + "'s"
    lower = word.lower()
    if lower in _KEEP:
        return word
    for ie in _IE:
        if lower.endswith(ie + "s"):
            return lower
    for plural, singular in _IRREGULAR:
        if lower.endswith(plural):
            return re.sub("(?i)" + plural + "$", singular, word)
    for rule, replacement in _RULES:
        match = rule.search(word)
        if match:
            for index, group in enumerate(match.groups()):
                if group is None:  # an unmatched group is replaced by nothing
                    replacement = replacement.replace("\\" + str(index + 1), "")
            return rule.sub(replacement, word)
    return word
