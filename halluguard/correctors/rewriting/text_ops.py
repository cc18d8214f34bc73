"""From a plan to the answer's edits: overlapping removals merged (removals win over other edits),
stray commas and spaces tidied, paragraph breaks kept, and every sentence left starting with a
capital.

>>> from halluguard.correctors.rewriting.plan import Removal
>>> [(e.before, e.after) for e in to_edits("On the bench, a cat sleeps.", None, [Removal(0, 14, "gone")])]
[('On the bench, a', 'A')]
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from halluguard.correctors.mentions import group_root
from halluguard.correctors.rewriting.coordination import coordination_items
from halluguard.correctors.rewriting.phrases import SUBJECT_DEPS
from halluguard.correctors.rewriting.plan import Insertion, Op, Removal, Replacement, is_removal
from halluguard.records import Edit


def to_edits(text: str, doc: Any, ops: list[Op]) -> list[Edit]:
    """Resolve conflicts (removals win), tidy punctuation and capitals, and build the edits."""
    removals = [op for op in ops if is_removal(op)]
    others = [op for op in ops if not is_removal(op)]
    joined = _join_spaces(text, _merge(removals))
    removals = _merge([_tidy(text, doc, op) if isinstance(op, Removal) else op for op in joined])
    removals = _paragraphs(text, removals)
    kept: list[Op] = list(removals)
    for op in others:
        clash = False
        for other in kept:
            if isinstance(op, Insertion) and isinstance(other, Insertion):
                clash = op.start == other.start
            elif op.start == op.end:  # insertion
                clash = other.start < op.start < other.end or (
                    other.start == op.start and other.end > other.start and other.text == ""
                )
            else:
                clash = op.start < other.end and other.start < op.end
            if clash:
                break
        if not clash:
            kept.append(op)
    kept.sort(key=lambda o: (o.start, o.end))
    kept = _capitalise(text, kept)
    kept = _sentence_case(text, doc, kept)
    edits = []
    for op in kept:
        if text[op.start : op.end] == op.text:
            continue
        edits.append(Edit(op.start, op.end, text[op.start : op.end], op.text, op.reason))
    return edits


def _join_spaces(text: str, ops: list[Op]) -> list[Op]:
    """Deletions with only spaces between them become one ("sitting [at a table] [in a train car].")
    so that tidying sees what is really left on either side."""
    out: list[Op] = []
    for op in sorted(ops, key=lambda o: (o.start, o.end)):
        last = out[-1] if out else None
        if (
            isinstance(last, Removal) and isinstance(op, Removal)
            and last.end <= op.start and set(text[last.end : op.start]) <= {" "}
        ):  # fmt: skip
            out[-1] = Removal(last.start, op.end, last.reason + "; " + op.reason, op.keep_comma)
        else:
            out.append(op)
    return out


def _paragraphs(text: str, ops: list[Op]) -> list[Op]:
    """Deletions separated only by whitespace leave one run of it, the strongest (a paragraph
    break before a line break before a space), and none at the start or end of the text: "A cat
    sleeps. A man holds an umbrella.\\n\\nA bench stands.\\n\\nThe sky is blue." minus the umbrella and
    the bench -> "A cat sleeps.\\n\\nThe sky is blue." (not "A cat sleeps. \\n\\n\\n\\nThe sky ...")."""
    ops = sorted(ops, key=lambda o: (o.start, o.end))
    out: list[Op] = []
    k = 0
    while k < len(ops):
        chain = [ops[k]]
        while (
            k + 1 < len(ops) and chain[-1].text == "" and ops[k + 1].text == ""
            and chain[-1].end <= ops[k + 1].start and not text[chain[-1].end : ops[k + 1].start].strip()
        ):  # fmt: skip
            k += 1
            chain.append(ops[k])
        k += 1
        if any(op.text != "" for op in chain):
            out.extend(chain)
            continue
        a, b = chain[0].start, chain[-1].end
        while a > 0 and text[a - 1].isspace():
            a -= 1
        while b < len(text) and text[b].isspace():
            b += 1
        # the whitespace runs left between and around the deletions: (start, end)
        runs = (
            [(a, chain[0].start)]
            + [(x.end, y.start) for x, y in zip(chain, chain[1:])]
            + [(chain[-1].end, b)]
        )
        runs = [(i, j) for i, j in runs if j > i]
        if len(runs) < 2 and not (runs and (a == 0 or b == len(text))):
            out.extend(chain)
            continue
        keep = None
        if a > 0 and b < len(text) and runs:
            rank = lambda r: 2 if "\n\n" in text[r[0] : r[1]] else 1 if "\n" in text[r[0] : r[1]] else 0  # noqa: E731
            keep = max(runs, key=rank)
        spans = [(op.start, op.end) for op in chain] + [r for r in runs if r != keep]
        spans.sort()
        merged: list[list[int]] = []
        for i, j in spans:
            if merged and i <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], j)
            else:
                merged.append([i, j])
        reason = "; ".join(op.reason for op in chain)
        out.extend(Removal(i, j, reason) for i, j in merged)
    return out


def _merge(ops: list[Op]) -> list[Op]:
    """Union overlapping removals. A removal that reaches further carries its replacement text
    (a list separator such as " and ") into the union; one inside another disappears."""
    ops = sorted(ops, key=lambda o: (o.start, -o.end))
    out: list[Op] = []
    for op in ops:
        if out and op.start < out[-1].end:
            last = out[-1]
            end, replacement, reason = last.end, last.text, last.reason
            if op.end > last.end:
                end = op.end
                replacement = op.text or last.text
            if op.reason not in reason:
                reason += "; " + op.reason
            if replacement:
                out[-1] = Replacement(last.start, end, replacement, reason, with_removal=True)
            else:
                out[-1] = dataclasses.replace(last, end=end, reason=reason)
            continue
        out.append(op)
    return out


def _tidy(text: str, doc: Any, op: Removal) -> Removal:
    """Widen a deletion so no stray comma or double space is left behind."""
    a, b = op.start, op.end
    if a == b:
        return op
    before = text[:a].rstrip(" ")
    after = text[b:].lstrip(" ")
    left_comma = before.endswith(",")
    right_char = after[:1]
    a_trim = len(before)
    b_trim = len(text) - len(after)
    if left_comma and right_char == ",":
        a, b = a_trim - 1, b_trim + 1  # ", holding a frisbee," -> ""
    elif left_comma and (right_char in (".", ";", ":", "!", "?", ")") or not after.strip()):
        a, b = a_trim - 1, b_trim  # ", taking a picture." -> "."
    elif not left_comma and right_char == "," and _clause_follows(doc, len(text) - len(after)):
        a = a_trim  # "in the middle of the bench, and it" -> "in the middle, and it": the clause's comma
    elif not left_comma and right_char == "," and op.keep_comma:
        a = a_trim  # "a dog and a cat, both black" - cat -> "a dog, black"
    elif not left_comma and right_char == ",":
        b = b_trim + 1  # "is on the bed, next to" -> "is next to"
        if _starts_sentence(text, a):
            while b < len(text) and text[b] == " ":
                b += 1
        else:
            a = a_trim
    elif right_char in (".", ",", ";", ":", "!", "?", ")") and a_trim < a:
        a = a_trim  # " with a laptop." -> "."
    elif a_trim < a and b_trim > b:
        b = b_trim  # one of the two spaces goes
    elif a_trim < a and not after:
        a = a_trim
    elif b_trim > b and _starts_sentence(text, a):
        b = b_trim
    return Removal(a, b, op.reason, op.keep_comma)


def _clause_follows(doc: Any, comma: int) -> bool:
    """The comma at character ``comma`` comes before a conjunction that joins a clause with its own
    subject (", while others are", ", and it appears") or the last item of a list of three or more
    (", and a dog"), not the second of two items or a predicate."""
    span = doc.char_span(comma, comma + 1, alignment_mode="expand")
    if span is None or span[-1].i + 1 >= len(doc):
        return False
    word = doc[span[-1].i + 1]
    if word.lower_ in ("while", "whereas", "but", "yet", "so") and word.dep_ in ("mark", "cc"):
        return True
    if word.dep_ != "cc" or word.lower_ not in ("and", "or"):
        return False
    conjuncts = [c for c in word.head.children if c.dep_ == "conj" and c.i > word.i]
    if not conjuncts:
        return False
    if any(c.dep_ in SUBJECT_DEPS for c in conjuncts[0].children):
        return True
    return len(coordination_items(group_root(conjuncts[0]))) > 2  # "a girl, and a dog": a serial comma


def _starts_sentence(text: str, position: int) -> bool:
    before = text[:position].rstrip()
    return not before or before[-1] in ".!?\n:"


_SENTENCE_START = re.compile(r"(?:^\s*|[.!?]\s+)([A-Za-z])")


def _sentence_case(text: str, doc: Any, ops: list[Op]) -> list[Op]:
    """Make every sentence of the result start with a capital, whatever edit put a word there
    ("..., and a clock" - the clause -> "What may be a clock", "a few people" -> "One person"), and
    lower-case a word that no longer starts one ("possibly The man" -> "Possibly the man"). Words
    already so in the original are left alone."""
    ops = sorted(ops, key=lambda o: (o.start, o.end))
    pieces: list[tuple[str, int, int]] = []  # (text, op index or -1, original offset of piece)
    position = 0
    for k, op in enumerate(ops):
        pieces.append((text[position : op.start], -1, position))
        pieces.append((op.text, k, op.start))
        position = op.end
    pieces.append((text[position:], -1, position))
    output = "".join(p for p, _, _ in pieces)
    owner: list[tuple[int, int]] = []  # for each output character: (op index or -1, offset)
    for piece, k, origin in pieces:
        owner.extend((k, i if k >= 0 else origin + i) for i in range(len(piece)))
    original_starts = {m.start(1) for m in _SENTENCE_START.finditer(text)}
    upper: dict[int, list[int]] = {}  # op index -> offsets in its replacement to capitalise
    extra: list[Op] = []
    starts = {m.start(1) for m in _SENTENCE_START.finditer(output)}
    for j in sorted(starts):
        k, i = owner[j]
        if output[j].isupper():
            continue
        if k >= 0:
            upper.setdefault(k, []).append(i)
        elif i not in original_starts:
            extra.append(Replacement(i, i + 1, text[i].upper(), "capital"))
    for j, (k, i) in enumerate(owner):  # an original capital that no longer starts a sentence
        if k >= 0 or j in starts or i not in original_starts or not output[j].isupper() or j == 0:
            continue
        if owner[j - 1][0] < 0 or not ops[owner[j - 1][0]].text.strip():
            continue  # only after an inserted word ("possibly The man")
        span = doc.char_span(i, i + 1, alignment_mode="expand")
        if span is not None and len(span) and span[0].tag_ not in ("NNP", "NNPS") and span[0].text != "I":
            extra.append(Replacement(i, i + 1, text[i].lower(), "not a sentence start"))
    out = []
    for k, op in enumerate(ops):
        if k in upper:  # only a replacement's or an insertion's own text can hold the sentence start
            letters = list(op.text)
            for i in upper[k]:
                letters[i] = letters[i].upper()
            op = dataclasses.replace(op, text="".join(letters))
        out.append(op)
    return sorted(out + extra, key=lambda o: (o.start, o.end))


def _capitalise(text: str, ops: list[Op]) -> list[Op]:
    """Capitalise the word that now starts a sentence after a deletion at its start."""
    out: list[Op] = []
    for k, op in enumerate(ops):
        if isinstance(op, Removal) and _starts_sentence(text, op.start):
            b = op.end
            if b < len(text) and text[b].islower():
                clash = any(o.start <= b < o.end or o.start == b for n, o in enumerate(ops) if n != k)
                if not clash:  # the removal takes the word's first letter and writes it as a capital
                    out.append(Replacement(op.start, b + 1, text[b].upper(), op.reason, with_removal=True))
                    continue
        out.append(op)
    return out
