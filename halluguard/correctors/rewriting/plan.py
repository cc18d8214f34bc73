"""The edit plan: what to remove or replace, over which characters of the answer, and why.

A plan is a list of ops, each a :class:`Removal`, a :class:`Replacement` or an :class:`Insertion`
with offsets into the original text; the policies append to it through a :class:`Plan`, which
carries everything they need (the parse, the claims, what has been removed so far), and
:func:`~.text_ops.to_edits` turns it into the answer's edits.

>>> Removal(4, 8, "contradicted: dog").text, Insertion(4, "possibly ", "hedged").end
('', 4)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from halluguard.correctors.mentions import Mention
from halluguard.correctors.words import PLURAL_NOUN_TAGS
from halluguard.records import Claim


@dataclass(frozen=True)
class Removal:
    """The characters ``start:end`` go."""

    start: int
    end: int
    reason: str
    keep_comma: bool = False  # a list's last items: the comma after them belongs to the list

    @property
    def text(self) -> str:
        return ""


@dataclass(frozen=True)
class Replacement:
    """The characters ``start:end`` become ``text``.

    ``with_removal``: made as part of a removal (the separator left between the list items kept
    around removed ones, the article fitted to the item that now comes first): merged with the
    removals it overlaps and, like them, kept over any other edit it clashes with.
    """

    start: int
    end: int
    text: str
    reason: str
    with_removal: bool = False


@dataclass(frozen=True)
class Insertion:
    """``text`` goes in at ``start``."""

    start: int
    text: str
    reason: str

    @property
    def end(self) -> int:
        return self.start


Op = Union[Removal, Replacement, Insertion]


def is_removal(op: Op) -> bool:
    """A removal, or a replacement made as part of one: these merge, and win over other edits."""
    return isinstance(op, Removal) or (isinstance(op, Replacement) and op.with_removal)


def seen_count(claim: Claim) -> int | None:
    """How many of the claim's object the detector saw (``evidence["count"]``, else its boxes)."""
    evidence = claim.evidence if isinstance(claim.evidence, dict) else {}
    value = evidence.get("count")
    if value is None and isinstance(evidence.get("boxes"), list):
        value = len(evidence["boxes"])
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def end_of(token: Any) -> int:
    """The character offset just after ``token``."""
    return token.idx + len(token.text)


@dataclass
class Plan:
    """The state of one answer's planning: its parse and claims, and the ops made so far.

    ``removed`` and ``hedged`` are positions in ``claims``; ``protected`` the object claims that
    stay (a removal that takes one with it says so in its reason). The rest records the removals
    under way: list items removed per coordination (by its root's token index), the heads removed,
    the ops already emitted for each coordination, and the conjuncts removed because their
    subject went.
    """

    doc: Any
    text: str
    claims: list[Claim]
    removed: set[int]
    hedged: set[int]
    protected: list[Claim]
    ops: list[Op] = field(default_factory=list)
    items: dict[int, set[int]] = field(default_factory=dict)  # group root -> removed items
    item_reasons: dict[int, list[str]] = field(default_factory=dict)
    removed_heads: set[int] = field(default_factory=set)
    emitted: dict[int, tuple[frozenset[int], list[Op]]] = field(default_factory=dict)  # root -> (items, ops)
    subject_items: set[int] = field(default_factory=set)  # conjuncts removed because their subject went

    @classmethod
    def start(cls, doc: Any, text: str, claims: list[Claim], remove_at: set[int], hedge_at: set[int]) -> Plan:
        """A fresh plan: contradicted claims and those at ``remove_at`` are removed, those at
        ``hedge_at`` (and not removed) hedged."""
        removed = {i for i, c in enumerate(claims) if c.verdict == "contradicted" or i in remove_at}
        protected = [
            c for i, c in enumerate(claims)
            if c.kind == "object" and c.verdict != "contradicted" and i not in remove_at
        ]  # fmt: skip
        return cls(doc, text, list(claims), removed, hedge_at - removed, protected)

    def head_of(self, claim: Claim) -> Any | None:
        """The last token of the claim's span (the head of its noun phrase)."""
        span = self.doc.char_span(claim.start, claim.end, alignment_mode="expand")
        if span is None or len(span) == 0:
            return None
        return span[-1]

    def mention_of(self, claim: Claim) -> Mention | None:
        """The object mention a count/attribute claim ends with (its words, not the modifiers)."""
        head = self.head_of(claim)
        if head is None:
            return None
        start = next(
            (
                c.start
                for c in self.claims
                if c.kind == "object" and c.end == claim.end and c.start >= claim.start
            ),
            head.idx,
        )
        first = self.doc.char_span(start, claim.end, alignment_mode="expand")[0]
        return Mention(first.i, head.i, claim.label, False, head.tag_ in PLURAL_NOUN_TAGS, start, claim.end)

    def label_at(self, token: Any) -> str | None:
        """The label of the object claim whose span holds ``token``."""
        return next(
            (c.label for c in self.claims if c.kind == "object" and c.start <= token.idx < c.end), None
        )

    def with_losses(self, reason: str, start: int, end: int) -> str:
        """``reason``, plus the kept objects that removing ``start:end`` takes with it."""
        lost = [c.text for c in self.protected if start <= c.start and c.end <= end]
        return reason + (f" (also removes: {', '.join(lost)})" if lost else "")

    def removed_spans(self) -> list[tuple[int, int]]:
        """The character spans of the removals planned so far."""
        return [(op.start, op.end) for op in self.ops if is_removal(op)]

    def at_sentence_start(self, char: int) -> bool:
        span = self.doc.char_span(char, char + 1, alignment_mode="expand")
        if span is None or len(span) == 0:
            return False
        token = span[0]
        return token.is_sent_start or token.i == 0 or self.doc[token.i - 1].is_space and token.idx == char
