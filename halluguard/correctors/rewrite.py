"""Stage 4: rewrite what the image does not support, leaving the rest of the answer intact.

:func:`rewrite` reads the verdicts on an answer's claims and edits the text, deterministically,
with the smallest grammatical change it can find:

- **contradicted object**: removed with the least damage, trying in order
  1. the list item: "a dog, a cat and a frisbee" minus the cat -> "a dog and a frisbee", with
     agreement ("There are a dog and a cat" minus the dog -> "There is a cat"; "Both the dog and
     the cat are" -> "The cat is"; "a bench and a can, both near" -> "a can, near");
  2. one of two predicates sharing a subject: "The player is wearing a glove and is standing"
     -> "The player is standing" (not when the subject itself is absent);
  3. an absent object that a present one comes "with", in a clause that only says it is there:
     "The image features a table with a bowl of fruit on it" -> "The image features a bowl of
     fruit";
  4. the smallest optional phrase that holds it: a prepositional phrase ("a table with a laptop"
     -> "a table"), a participle or relative clause ("a woman holding an umbrella" -> "a
     woman"), an adverbial or coordinated clause (", while a cat watches"); when the clause
     needs its place phrase, only the "of" part of "the middle of the bench" ("is positioned in
     the middle"); "seated", "parked", "lying"... can end a clause, "located", "surrounded",
     "in the process of" cannot;
  5. the whole sentence, only when nothing smaller is grammatical ("A man is holding an
     umbrella."). This is the one case where supported words can go too; the edit's reason
     names them.
- **contradicted count** (``evidence["count"]`` = boxes seen): "three people" -> "two people",
  "two dogs are" -> "one dog is"; a count of 0 removes the object.
- **contradicted colour** (``evidence["attribute"]``): "a red car" -> "a blue car" (article
  fixed); without an observed colour the colour word goes ("an orange cat" -> "a cat").
- **contradicted relation** (``evidence["relation"]``): "to the left of" -> "to the right of";
  without an observed relation the phrase goes. A relation whose subject or target is absent
  (``evidence["count"] == 0``) goes with that object's removal.
- supported and unverifiable spans are never edited, except to inflect a noun whose count changed.
- ``grounding=True`` appends boxes to the first supported mention of each label, Woodpecker
  style: "a dog [12, 30, 200, 180]" (pixels, rounded; several boxes separated by ";").

Unverifiable claims can be kept (default), hedged or removed; in LURE mode
(``suspicion_threshold``) suspicious claims that the detector did not support are removed or
hedged too. Hedging gives "There may be a dog", "A dog may be sleeping", "possibly a cat" in a
list, "what may be a dog" elsewhere.

Edits carry offsets into the original text and never overlap; applying them in order gives the
corrected text.

>>> from halluguard.records import Claim
>>> text = "There are a dog and a cat."
>>> claims = [Claim("dog", 12, 15, "object", "dog", verdict="contradicted"),
...           Claim("cat", 22, 25, "object", "cat", verdict="supported")]
>>> rewrite(text, claims)[0]  # doctest: +SKIP
'There is a cat.'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from halluguard.correctors.rewriting.fixes import fix_attribute, fix_count, fix_relation
from halluguard.correctors.rewriting.grounding import ground
from halluguard.correctors.rewriting.hedging import hedge_claim
from halluguard.correctors.rewriting.plan import Op, Plan, seen_count
from halluguard.correctors.rewriting.removal import dangling_pronouns, remove_nodes
from halluguard.correctors.rewriting.text_ops import to_edits
from halluguard.records import Claim, Edit

__all__ = ["apply_edits", "make_plan", "rewrite", "targets"]


def targets(
    claims: Sequence[Claim],
    *,
    unverifiable: str = "keep",
    suspicion_threshold: float | None = None,
    suspicious: str = "remove",
    remove: Iterable[Claim] = (),
    hedge: Iterable[Claim] = (),
) -> tuple[set[int], set[int]]:
    """The positions in ``claims`` of those :func:`rewrite` removes and of those it hedges, from its
    options (contradicted claims aside, which it always removes).

    >>> targets([], unverifiable="remove")
    (set(), set())
    """
    for name, value in (("unverifiable", unverifiable), ("suspicious", suspicious)):
        allowed = ("keep", "hedge", "remove") if name == "unverifiable" else ("hedge", "remove")
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    to_remove, to_hedge = list(remove), list(hedge)
    if suspicion_threshold is not None:
        from halluguard.correctors.lure import select_suspicious

        (to_remove if suspicious == "remove" else to_hedge).extend(
            select_suspicious(claims, suspicion_threshold)
        )
    if unverifiable != "keep":
        chosen = [c for c in claims if c.kind == "object" and c.verdict == "unverifiable"]
        (to_remove if unverifiable == "remove" else to_hedge).extend(chosen)
    removed = {i for i, claim in enumerate(claims) if claim in to_remove}
    return removed, {i for i, claim in enumerate(claims) if claim in to_hedge} - removed


def rewrite(
    text: str,
    claims: Sequence[Claim],
    *,
    grounding: bool = False,
    unverifiable: str = "keep",
    suspicion_threshold: float | None = None,
    suspicious: str = "remove",
    remove: Iterable[Claim] = (),
    hedge: Iterable[Claim] = (),
    doc: Any = None,
    nlp: Any = None,
) -> tuple[str, list[Edit]]:
    """Correct ``text`` from the verdicts of its ``claims``; returns ``(corrected, edits)``.

    - ``unverifiable``: what to do with object claims nobody could check: ``keep``, ``hedge``
      or ``remove``.
    - ``suspicion_threshold``: LURE mode: object claims not supported whose ``suspicion`` (see
      :func:`~halluguard.correctors.lure.suspicion`) reaches it are removed (``suspicious=
      "remove"``) or hedged (``"hedge"``).
    - ``remove`` / ``hedge``: further object claims to remove or hedge, whatever their verdict.
    - ``doc``: the spaCy parse of ``text``, best the one the claims came from
      (:func:`~halluguard.correctors.component.parse_claims`); without it ``text`` is parsed with
      ``nlp`` (default: :func:`~halluguard.correctors.nlp.load_spacy`). A parse that did not go
      through the claims component is repaired as the component would.
    """
    remove_at, hedge_at = targets(
        claims, unverifiable=unverifiable, suspicion_threshold=suspicion_threshold, suspicious=suspicious,
        remove=remove, hedge=hedge,
    )
    if not (remove_at or hedge_at or grounding or any(c.verdict == "contradicted" for c in claims)):
        return text, []
    if doc is not None and doc.text != text:
        raise ValueError("rewrite: doc is the parse of a different text")
    if doc is None or doc._.claims is None:
        doc = _repaired(text, doc, claims, nlp)
    ops = make_plan(doc, text, claims, remove_at, hedge_at, grounding=grounding)
    edits = to_edits(text, doc, ops)
    return apply_edits(text, edits), edits


def _repaired(text: str, doc: Any, claims: Sequence[Claim], nlp: Any) -> Any:
    """``doc`` (parsed now when ``None``) with the claims component's repairs at the claims' nouns."""
    from halluguard.correctors.component import claim_extractor

    extractor = claim_extractor(nlp)
    doc = extractor.reparse(text) if doc is None else doc
    heads = []
    for claim in claims:
        if claim.kind == "object":
            span = doc.char_span(claim.start, claim.end, alignment_mode="expand")
            if span is not None and len(span):
                heads.append(span[-1].i)
    extractor.repair(doc, heads)
    return doc


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """Apply non-overlapping edits (offsets into ``text``) and return the new text."""
    out: list[str] = []
    position = 0
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        if edit.start < position:
            raise ValueError(f"overlapping edits at {edit.start}")
        out.append(text[position : edit.start])
        out.append(edit.after)
        position = edit.end
    out.append(text[position:])
    return "".join(out)


def make_plan(
    doc: Any, text: str, claims: Sequence[Claim], remove_at: set[int], hedge_at: set[int], *, grounding: bool
) -> list[Op]:
    """The edit plan for ``text``: the objects at ``remove_at`` (and contradicted ones) removed,
    contradicted counts, colours and relations fixed, objects at ``hedge_at`` hedged and, with
    ``grounding``, supported objects grounded (policies in :mod:`halluguard.correctors.rewriting`)."""
    plan = Plan.start(doc, text, list(claims), remove_at, hedge_at)
    removals: list[tuple[Any, str]] = []
    for i, claim in enumerate(plan.claims):
        if claim.kind != "object":
            continue
        if i in plan.removed:
            head = plan.head_of(claim)
            if head is not None:
                why = "contradicted" if claim.verdict == "contradicted" else "suspicious"
                removals.append((head, f"{why}: {claim.text}"))
    for claim in plan.claims:  # a count of zero is an absent object
        if claim.kind == "count" and claim.verdict == "contradicted" and seen_count(claim) == 0:
            head = plan.head_of(claim)
            if head is not None and head.i not in {h.i for h, _ in removals}:
                removals.append((head, f"contradicted: {claim.text} (none seen)"))
    remove_nodes(plan, removals)
    if removals:
        remove_nodes(plan, dangling_pronouns(plan))
    for claim in plan.claims:
        if claim.verdict != "contradicted":
            continue
        if claim.kind == "count":
            fix_count(plan, claim)
        elif claim.kind == "attribute":
            fix_attribute(plan, claim)
        elif claim.kind == "relation":
            fix_relation(plan, claim)
    for i, claim in enumerate(plan.claims):
        if i in plan.hedged and claim.kind == "object":
            hedge_claim(plan, claim)
    if grounding:
        ground(plan)
    return plan.ops
