"""Stage 6: yes/no questions about an object (POPE style), checked against the detector.

When a record's question asks whether an object is in the image ("Is there a dog in the image?"),
the answer's yes/no is compared with the detector: a "yes" the detector contradicts (it knows the
class and saw none) becomes "no", and a "no" about an object the detector clearly sees becomes
"yes". Classes the detector does not know, and weak detections, change nothing.

>>> from halluguard.records import Detection, Detections
>>> seen = Detections([Detection("cat", 0.9, (0, 0, 10, 10))], (20, 20), frozenset({"dog", "cat"}))
>>> label_of = {"dog": "dog", "cat": "cat", "puppy": "dog"}.get
>>> check_yes_no("Is there a dog in the image?", "Yes, there is a dog.", seen, label_of)[0]
'No, there is no dog.'
>>> check_yes_no("Is there a cat in the image?", "No, there is no cat in the image.", seen, label_of)[0]
'Yes, there is a cat in the image.'
>>> new, claim = check_yes_no("Is there a puppy in the image?", "No.", seen, label_of)
>>> new, claim.label, claim.verdict, claim.evidence["asserts"]
(None, 'dog', 'supported', 'absent')

The claim returned is the answer's assertion, with offsets into the answer: ``kind="object"``,
``label`` the detector class, ``evidence["asserts"]`` ``"present"`` (a yes) or ``"absent"`` (a no),
``evidence["question_object"]`` the noun asked about, and the detector evidence of
:func:`~halluguard.correctors.verify.verify`. Its ``verdict`` is about the answer: a "no" is
``supported`` when the detector knows the class and saw none. The answer is rewritten exactly when
the verdict is ``contradicted``.

Rewriting keeps the answer's own words where it can: the leading yes/no is flipped (case and
punctuation kept) and the first sentence's statement about the object is negated or affirmed
("there is a dog" <-> "there is no dog", "I can see" <-> "I cannot see", "contains" <-> "does not
contain"); later sentences that elaborate on the object (mention it, or start with a pronoun) are
dropped when a yes becomes a no. An answer with no recognisable yes/no is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from halluguard.correctors.grammar import article_for
from halluguard.correctors.verify import DEFAULT_MIN_SCORE, DEFAULT_THRESHOLD, verify
from halluguard.correctors.vocabulary import singularize
from halluguard.records import Claim, Detections

LabelOf = Callable[[str], "str | None"]

_PLACE = (
    r"(?:(?:in|on|inside|within|at)\s+(?:the|this|that|your)\s+"
    r"(?:image|picture|photo|photograph|scene|frame|view))"
)
_DET = r"(?:(?:a|an|any|some|one|the)\s+)?"
_QUESTION_PATTERNS = [
    re.compile(
        rf"^(?:is|are)\s+there\s+{_DET}(?P<noun>.+?)(?:\s+{_PLACE}|\s+(?:visible|present|shown|here))?\s*$",
        re.I,
    ),
    re.compile(
        rf"^(?:does|do)\s+(?:the|this|that)\s+(?:image|picture|photo|photograph|scene)\s+"
        rf"(?:contain|show|have|include|feature|depict)\s+{_DET}(?P<noun>.+?)\s*$",
        re.I,
    ),
    re.compile(rf"^(?:do|can|could)\s+you\s+see\s+{_DET}(?P<noun>.+?)(?:\s+{_PLACE})?\s*$", re.I),
    re.compile(
        rf"^(?:is|are)\s+{_DET}(?P<noun>.+?)\s+(?:present|visible|shown|depicted|pictured)"
        rf"(?:\s+{_PLACE})?\s*$",
        re.I,
    ),
    re.compile(rf"^(?:is|are)\s+(?:a|an|any|some|the)\s+(?P<noun>.+?)\s+{_PLACE}\s*$", re.I),
]
_LEADING = re.compile(r"^(?P<pre>\s*)(?P<word>yes|yeah|yep|no|nope)\b", re.I)
#: a yes/no that answers something (followed by punctuation: not the determiner of "No people are ...")
_ANSWERING = re.compile(r"^\s*(?:yes|yeah|yep|no|nope)\s*[,.!;:]\s*", re.I)
#: statements of existence after a leading yes/no, when the question is not given
_STATEMENT_PATTERNS = [
    re.compile(
        rf"^there\s+(?:is|are|'s)\s+(?:not\s+|no\s+)?(?:any\s+)?{_DET}(?P<noun>.+?)"
        rf"(?:\s+{_PLACE}|\s+(?:visible|present|shown|here))?\s*$",
        re.I,
    ),
    re.compile(
        rf"^(?:i\s+)?(?:can\s+|cannot\s+|can't\s+|can\s+not\s+|do\s+not\s+|don't\s+)?see\s+(?:no\s+|any\s+)?"
        rf"{_DET}(?P<noun>.+?)(?:\s+{_PLACE})?\s*$",
        re.I,
    ),
    re.compile(
        rf"^(?:the|this)\s+(?:image|picture|photo|photograph|scene)\s+(?:does\s+not\s+|doesn't\s+)?"
        rf"(?:contains?|shows?|has|have|includes?|features?|depicts?)\s+(?:no\s+|any\s+)?{_DET}"
        rf"(?P<noun>.+?)\s*$",
        re.I,
    ),
    re.compile(
        rf"^(?:a|an|the|some)\s+(?P<noun>.+?)\s+(?:is|are)\s+(?:not\s+)?(?:present|visible)"
        rf"(?:\s+{_PLACE})?\s*$",
        re.I,
    ),
]
_SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+|$)\s*")
_PRONOUN_START = re.compile(r"^\s*(?:it|its|it's|they|their|he|she|his|her|this|these|those)\b", re.I)

_VERB_BASE = {
    "contains": "contain",
    "shows": "show",
    "has": "have",
    "includes": "include",
    "features": "feature",
    "depicts": "depict",
}
_VERB_THIRD = {v: k for k, v in _VERB_BASE.items()}
_NUMBER = r"(?:some|several|many|a few|a couple of|two|three|four|five|six|seven|eight|nine|ten|\d+)"
_SUBJECT = r"(?:the image|the picture|the photo|the scene|this image|this picture|this photo|it)"

# (pattern, replacement) applied once, first match wins: an affirmative statement made negative
_NEGATE = [
    (re.compile(r"\bthere(?:\s+is|'s)\s+(?:an|a|one|some)\s+", re.I), "there is no "),
    (re.compile(rf"\bthere\s+are\s+(?:{_NUMBER}\s+)?", re.I), "there are no "),
    (re.compile(rf"\bI\s+can\s+see\s+(?:(?:an|a|one|some|any|{_NUMBER})\s+)?", re.I), "I cannot see any "),
    (re.compile(rf"\bI\s+see\s+(?:(?:an|a|one|some|any|{_NUMBER})\s+)?", re.I), "I do not see any "),
    (
        re.compile(
            rf"\b({_SUBJECT})\s+(contains|shows|has|includes|features|depicts)\s+(?:(?:an|a|one|some|{_NUMBER})\s+)?",
            re.I,
        ),
        lambda m: f"{m.group(1)} does not {_VERB_BASE[m.group(2).lower()]} any ",
    ),
    (
        re.compile(r"\b(?:an|a|the)\s+(\w+(?:\s+\w+)?)\s+(is|are)\s+(present|visible)", re.I),
        lambda m: f"no {m.group(1)} {m.group(2)} {m.group(3)}",
    ),
]
# a negative statement made affirmative; "{a}" becomes the article the next word needs
_AFFIRM = [
    (re.compile(r"\bthere(?:\s+is|'s)\s+no\s+", re.I), "there is {a} "),
    (re.compile(r"\bthere(?:\s+is\s+not|\s+isn't|'s\s+not)\s+(?:any|an|a|one)\s+", re.I), "there is {a} "),
    (re.compile(r"\bthere\s+are\s+no\s+", re.I), "there are "),
    (re.compile(r"\bthere(?:\s+are\s+not|\s+aren't)\s+(?:any\s+)?", re.I), "there are "),
    (
        re.compile(r"\bI\s+(?:do\s+not|don't|cannot|can't|can\s+not)\s+see\s+(?:(?:any|an|a|one)\s+)?", re.I),
        "I can see {a} ",
    ),
    (
        re.compile(
            r"\b(does\s+not|doesn't)\s+(contain|show|have|include|feature|depict)\s+(?:(?:any|an|a)\s+)?",
            re.I,
        ),
        lambda m: f"{_VERB_THIRD[m.group(2).lower()]} {{a}} ",
    ),
    (
        re.compile(r"\bno\s+(\w+(?:\s+\w+)?)\s+(is|are)\s+(present|visible)", re.I),
        lambda m: f"{{a}} {m.group(1)} {m.group(2)} {m.group(3)}",
    ),
]
_NEGATIVE_HINTS = re.compile(
    r"\b(?:there\s+is\s+no|there\s+are\s+no|there\s+isn't|there\s+aren't|no\s+\w+\s+(?:is|are)\s+"
    r"(?:present|visible)|I\s+(?:do\s+not|don't|cannot|can't)\s+see|does\s+not\s+contain|"
    r"doesn't\s+contain)\b",
    re.I,
)
_POSITIVE_HINTS = re.compile(
    r"\b(?:there\s+is\s+(?:a|an|one)|there's\s+(?:a|an)|there\s+are|I\s+(?:can\s+)?see|"
    r"(?:contains|shows|features|depicts))\b",
    re.I,
)


def _label_function(vocabulary: Any) -> LabelOf:
    """A ``noun -> label`` function from a callable, a mapping, or an object with ``label_of``."""
    if isinstance(vocabulary, Mapping):
        return vocabulary.get  # type: ignore[return-value]
    for name in ("label_of", "canonical", "lookup"):
        method = getattr(vocabulary, name, None)
        if callable(method):
            return method
    if callable(vocabulary):
        return vocabulary
    raise TypeError(
        "vocabulary: pass a function noun -> label (or None), a dict, or an object with label_of()"
    )


def label_for(noun: str, label_of: LabelOf) -> str | None:
    """The detector label of a noun phrase: the whole phrase, its last two words, its last word,
    each as written and singularised.

    >>> label_for("big brown dogs", {"dog": "dog"}.get), label_for("hot dogs", {"hot dog": "hot dog"}.get)
    ('dog', 'hot dog')
    """
    words = noun.lower().split()
    for n in (len(words), 2, 1):
        if n > len(words) or n < 1:
            continue
        phrase = " ".join(words[-n:])
        for candidate in dict.fromkeys((phrase, " ".join(words[-n:-1] + [singularize(words[-1])]))):
            label = label_of(candidate)
            if label:
                return label
    return None


def question_object(question: str) -> str | None:
    """The noun phrase a yes/no existence question asks about, or ``None``.

    >>> question_object("Is there a dining table in the image?"), question_object("Are there any dogs?")
    ('dining table', 'dogs')
    >>> question_object("What colour is the car?"), question_object("Is there a dog or a cat?")
    (None, None)
    """
    sentences = re.split(r"(?<=[?.!])\s+", question.strip())
    for sentence in sentences:
        text = sentence.strip()
        if not text.endswith("?") and len(sentences) > 1:
            continue
        text = text.rstrip("?.! ").strip()
        for pattern in _QUESTION_PATTERNS:
            match = pattern.match(text)
            if match:
                noun = match.group("noun").strip(" ,")
                if not noun or len(noun.split()) > 4 or re.search(r"\b(?:or|and)\b|,", noun):
                    return None
                return noun
    return None


def statement_object(answer: str) -> str | None:
    """The noun phrase an answer's leading yes/no is about, read from the statement after it, for
    answers stored without their question; ``None`` when it does not start with a yes/no and an
    existence statement.

    >>> statement_object("Yes, there is a dog in the image."), statement_object("No, I can't see any cats.")
    ('dog', 'cats')
    >>> statement_object("No people are visible."), statement_object("Yes."), statement_object("A dog.")
    (None, None, None)
    """
    match = _ANSWERING.match(answer)
    if match is None:
        return None
    first = _SENTENCE.match(answer[match.end() :])
    text = first.group(0).strip().rstrip(".!").strip() if first else ""
    for pattern in _STATEMENT_PATTERNS:
        found = pattern.match(text)
        if found:
            noun = found.group("noun").strip(" ,")
            if noun and len(noun.split()) <= 4 and not re.search(r"\b(?:or|and)\b|,", noun):
                return noun
    return None


def answer_polarity(answer: str) -> tuple[str | None, int, int]:
    """``("yes" | "no" | None, start, end)``: what the answer says, and where (the yes/no word, or
    the whole first sentence when the answer has no leading yes/no).

    >>> answer_polarity("Yes, there is."), answer_polarity("There is no dog."), answer_polarity("Maybe.")
    (('yes', 0, 3), ('no', 0, 16), (None, 0, 0))
    """
    match = _LEADING.match(answer)
    if match:
        word = match.group("word").lower()
        return ("yes" if word in ("yes", "yeah", "yep") else "no"), match.start("word"), match.end("word")
    first = _SENTENCE.match(answer)
    if first is None:
        return None, 0, 0
    sentence = first.group(0).rstrip()
    if _NEGATIVE_HINTS.search(sentence):
        return "no", first.start(), first.start() + len(sentence)
    if _POSITIVE_HINTS.search(sentence):
        return "yes", first.start(), first.start() + len(sentence)
    return None, 0, 0


def _mentions(text: str, noun: str) -> bool:
    words = noun.lower().split()
    if not words:
        return False
    stem = re.escape(" ".join(words[:-1] + [singularize(words[-1])]))
    return re.search(rf"\b{stem}", text.lower()) is not None


def _follows(text: str, noun: str) -> bool:
    """Whether ``text`` starts with the noun, after at most three modifiers ("a big brown dog")."""
    words = noun.lower().split()
    stem = re.escape(" ".join(words[:-1] + [singularize(words[-1])])) if words else ""
    return (
        bool(stem)
        and re.match(rf"(?:(?!(?:and|or|with|a|an|the)\b)[\w'-]+\s+){{0,3}}{stem}", text.lower()) is not None
    )


def _apply_first(rules: list[tuple[re.Pattern[str], Any]], sentence: str, noun: str) -> str | None:
    """The sentence with the first matching rule applied, when the noun follows the match closely."""
    for pattern, replacement in rules:
        match = pattern.search(sentence)
        if match is None:
            continue
        if not (
            _mentions(sentence[match.start() : match.end()], noun) or _follows(sentence[match.end() :], noun)
        ):
            continue
        text = replacement(match) if callable(replacement) else replacement
        rest = sentence[match.end() :]
        if "{a}" in text:
            following = rest if text.endswith("{a} ") else text.split("{a}", 1)[1]
            text = text.replace("{a}", article_for(following.lstrip().split(" ", 1)[0]))
        if match.start() == 0 or sentence[: match.start()].strip() == "":
            text = (
                text[:1].upper() + text[1:] if sentence[match.start() : match.start() + 1].isupper() else text
            )
        return sentence[: match.start()] + text + rest
    return None


def _flip_word(word: str, to: str) -> str:
    out = to
    if word.isupper() and len(word) > 1:
        return out.upper()
    return out.capitalize() if word[:1].isupper() else out


def _statement(noun: str, to: str) -> str:
    """ "there is no dog" / "there is a dog" / "there are no dogs" / "there are dogs"."""
    words = noun.split()
    plural = bool(words) and singularize(words[-1].lower()) != words[-1].lower()
    if to == "no":
        return f"there {'are' if plural else 'is'} no {noun}"
    return f"there are {noun}" if plural else f"there is {article_for(noun)} {noun}"


def rewrite_answer(answer: str, to: str, noun: str) -> str:
    """``answer`` changed to say ``to`` ("yes" or "no") about ``noun`` (see the module doc).

    >>> rewrite_answer("Yes, there are two dogs in the picture. They are playing.", "no", "dogs")
    'No, there are no dogs in the picture.'
    >>> rewrite_answer("no", "yes", "dog"), rewrite_answer("I don't see a cat.", "yes", "cat")
    ('yes', 'I can see a cat.')
    >>> rewrite_answer("Yes, a big one.", "no", "dog")
    'No, there is no dog.'
    """
    if to not in ("yes", "no"):
        raise ValueError(f"to must be 'yes' or 'no', got {to!r}")
    sentences = [m.group(0) for m in _SENTENCE.finditer(answer)] or [answer]
    first, rest = sentences[0], sentences[1:]
    leading = _LEADING.match(first)
    if leading:
        head = first[: leading.start("word")] + _flip_word(leading.group("word"), to)
        body = first[leading.end("word") :]
        changed = _apply_first(_NEGATE if to == "no" else _AFFIRM, body, noun)
        if changed is not None:
            body = changed
        elif re.search(r"\w", body):  # "Yes, a big one." -> "No, there is no dog."
            body = f", {_statement(noun, to)}." + (" " if rest else "")
    else:
        head = ""
        changed = _apply_first(_NEGATE if to == "no" else _AFFIRM, first, noun)
        if changed is not None:
            body = changed
        else:  # nothing to edit in place: say it plainly
            statement = _statement(noun, to)
            body = statement[:1].upper() + statement[1:] + " in the image." + (" " if rest else "")
    if to == "no":
        words = noun.lower().split()
        singular = singularize(words[-1]) if words else noun.lower()
        rest = [
            s
            for s in rest
            if not (_PRONOUN_START.match(s) or re.search(rf"\b{re.escape(singular)}", s, re.I))
        ]
    return (head + body + "".join(rest)).rstrip()


def check_yes_no(
    question: str | None,
    answer: str,
    detections: Detections,
    vocabulary: LabelOf | Mapping[str, str] | Any,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_score: float = DEFAULT_MIN_SCORE,
) -> tuple[str | None, Claim | None]:
    """``(new_answer or None, claim or None)`` for one question/answer pair (see the module doc).
    Without a question, an answer that starts with a yes/no and a statement of existence ("Yes,
    there is a dog in the image.") is checked as the answer to that statement's question.

    ``vocabulary`` maps a noun to a detector label: any callable ``label_of(noun) -> str | None``,
    a dict, or an object with a ``label_of`` method. Returns ``(None, None)`` when the question is
    not an existence question about an object the vocabulary names, or the answer says neither yes
    nor no; ``(None, claim)`` when the answer stands (or the detector cannot tell).
    """
    if not answer:
        return None, None
    noun = question_object(question) if question else statement_object(answer)
    if noun is None:
        return None, None
    label = label_for(noun, _label_function(vocabulary))
    if label is None:
        return None, None
    polarity, start, end = answer_polarity(answer)
    if polarity is None:
        return None, None
    claim = Claim(text=answer[start:end], start=start, end=end, kind="object", label=label)
    verify([claim], detections, None, threshold=threshold, min_score=min_score)
    if polarity == "no" and claim.verdict != "unverifiable":
        claim.verdict = "contradicted" if claim.verdict == "supported" else "supported"  # type: ignore[assignment]
    claim.evidence = {
        **claim.evidence,
        "asserts": "present" if polarity == "yes" else "absent",
        "question_object": noun,
    }
    if claim.verdict != "contradicted":
        return None, claim
    return rewrite_answer(answer, "no" if polarity == "yes" else "yes", noun), claim


__all__ = [
    "answer_polarity", "check_yes_no", "label_for", "question_object", "rewrite_answer", "statement_object",
]
