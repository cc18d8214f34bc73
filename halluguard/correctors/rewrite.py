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

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from halluguard.correctors import grammar
from halluguard.correctors.claims import (
    _EXISTENCE,
    _HOMOGRAPH_VERBS,
    _NOUN_TAGS,
    RELATIONS,
    Mention,
    colour_of,
    group_root,
    quantifier,
    relation_phrase,
)
from halluguard.records import Claim, Edit

__all__ = ["apply_edits", "rewrite"]

_BE = frozenset({"is", "are", "was", "were", "'s", "'re", "am"})
#: nouns of "the left of", "the top of", "the side of": part of a longer preposition
_RELATIONAL_NOUNS = frozenset(
    "left right top front back side middle center centre edge corner end bottom rear background foreground".split()
)
#: nouns of place whose "of" phrase can go when the place phrase cannot ("in the middle of the bench")
_PART_NOUNS = frozenset(
    "left right top side middle center centre edge corner end bottom rear back front".split()
)
#: "a bowl of apples" can lose "of apples"; other "X of Y" ("a slice of pizza", "the presence of a
#: dog", "a group of people") are about Y, and go as a whole
_CONTAINER_NOUNS = frozenset(
    "bowl bowls plate plates cup cups glass glasses box boxes basket baskets tray trays bag bags bottle "
    "bottles jar jars vase vases pot pots pan pans bucket buckets bin bins crate crates carton cartons can "
    "cans mug mugs container containers dish dishes platter platters table tables shelf shelves".split()
)
#: verbs that need their place ("The bottle is located on the table" is not "... is located.")
_LOCATIVE_VERBS = frozenset(
    "located situated positioned placed perched set seated resting kept stored mounted hung hanging "
    "attached displayed stationed parked lying sitting standing".split()
)
#: verbs that need their phrase ("The table is surrounded by chairs" is not "... is surrounded.")
_COMPLEMENT_VERBS = frozenset(
    "surrounded filled covered topped lined accompanied occupied flanked crowded dotted adorned populated "
    "packed stocked loaded composed consisting consists".split()
)
#: nouns whose "of" phrase cannot go ("in the process of cutting a cake")
_NEEDS_OF = frozenset({"process", "midst", "act", "verge", "course"})
#: of those, the ones a clause can end with ("The man is seated.", "A car is parked.")
_STANDALONE_LOCATIVES = frozenset("lying sitting standing parked seated".split())
_SUBJECT_DEPS = frozenset({"nsubj", "nsubjpass", "expl", "csubj"})
#: what stands before a noun in its phrase ("a [big] [teddy] bear")
_NOUN_MODIFIER_DEPS = frozenset({"det", "amod", "compound", "nummod", "poss", "quantmod", "predet"})
#: verbs whose object can go ("A man is eating [a hot dog].", "A girl is reading.")
_OBJECT_OPTIONAL_VERBS = frozenset(
    "eat eats eating ate eaten drink drinks drinking drank read reads reading write writes writing wrote "
    "cook cooks cooking cooked bake bakes baking paint paints painting draw draws drawing smoke smokes "
    "smoking play plays playing played watch watches watching watched sing sings singing type types typing "
    "ride rides riding rode".split()
)
#: prepositions of place: a phrase they head after a removed object says where the rest is ("two cats
#: and a dog on a bed", "parked next to a meter on a quiet street") and stays
_PLACE_PREPOSITIONS = frozenset(
    "on in at under inside outside atop along across behind beneath underneath near beside by against "
    "over above below around among between within upon onto into".split()
)
_OPTIONAL_DEPS = frozenset(
    {"acl", "relcl", "advcl", "appos", "npadvmod", "parataxis", "agent", "prep", "advmod"}
)


@dataclass
class _Op:
    start: int
    end: int
    after: str
    reason: str
    kind: str  # "delete" (removal), "replace", "insert"
    keep_comma: bool = False  # a list's last items: the comma after them belongs to the list


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
    planner = _Planner(doc, text, claims, remove_at, hedge_at)
    ops = planner.plan(grounding)
    edits = _finish(text, doc, ops)
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


# ---------------------------------------------------------------------- planning


class _Planner:
    def __init__(
        self, doc: Any, text: str, claims: Sequence[Claim], remove_at: set[int], hedge_at: set[int]
    ):
        self.doc = doc
        self.text = text
        self.claims = list(claims)
        self.removed = {i for i, c in enumerate(self.claims) if c.verdict == "contradicted" or i in remove_at}
        self.hedged = hedge_at - self.removed
        self.ops: list[_Op] = []
        self.items: dict[int, set[int]] = {}  # group root -> removed items
        self.item_reasons: dict[int, list[str]] = {}
        self.removed_heads: set[int] = set()
        self.emitted: dict[int, tuple[frozenset[int], list[_Op]]] = {}  # group root -> (items, its ops)
        self.subject_items: set[int] = set()  # conjuncts removed because their subject went
        protected = [
            c for i, c in enumerate(self.claims)
            if c.kind == "object" and c.verdict != "contradicted" and i not in remove_at
        ]  # fmt: skip
        self.protected = protected

    # ---------------------------------------------------------------- helpers

    def head_of(self, claim: Claim) -> Any | None:
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
        return Mention(first.i, head.i, claim.label, False, head.tag_ in ("NNS", "NNPS"), start, claim.end)

    def end_of(self, token: Any) -> int:
        return token.idx + len(token.text)

    # ---------------------------------------------------------------- main

    def plan(self, grounding: bool) -> list[_Op]:
        removals: list[tuple[Any, str]] = []
        for i, claim in enumerate(self.claims):
            if claim.kind != "object":
                continue
            if i in self.removed:
                head = self.head_of(claim)
                if head is not None:
                    why = "contradicted" if claim.verdict == "contradicted" else "suspicious"
                    removals.append((head, f"{why}: {claim.text}"))
        for claim in self.claims:  # a count of zero is an absent object
            if claim.kind == "count" and claim.verdict == "contradicted" and _seen(claim) == 0:
                head = self.head_of(claim)
                if head is not None and head.i not in {h.i for h, _ in removals}:
                    removals.append((head, f"contradicted: {claim.text} (none seen)"))
        self.remove_nodes(removals)
        if removals:
            self.remove_nodes(self.dangling_pronouns())
        for claim in self.claims:
            if claim.verdict != "contradicted":
                continue
            if claim.kind == "count":
                self.fix_count(claim)
            elif claim.kind == "attribute":
                self.fix_attribute(claim)
            elif claim.kind == "relation":
                self.fix_relation(claim)
        for i, claim in enumerate(self.claims):
            if i in self.hedged and claim.kind == "object":
                self.hedge(claim)
        if grounding:
            self.ground()
        return self.ops

    # ---------------------------------------------------------------- removal

    def remove_nodes(self, nodes: list[tuple[Any, str]]) -> None:
        pending = [(token, reason, False) for token, reason in nodes]
        self.removed_heads.update(token.i for token, _ in nodes)
        while pending:
            token, reason, whole = pending.pop(0)
            if not whole and self.promote(token, reason):
                continue
            decision = self.climb(token, whole)
            kind = decision[0]
            if kind == "item":
                root, item = decision[1], decision[2]
                if any(c.dep_ in _SUBJECT_DEPS and token in c.subtree for c in item.children):
                    self.subject_items.add(item.i)
                removed = self.items.setdefault(root.i, set())
                removed.add(item.i)
                self.item_reasons.setdefault(root.i, []).append(reason)
                items = coordination_items(root)
                if len(removed) == len(items) or not self._items_removable(root, items, removed):
                    del self.items[root.i]
                    reasons = self.item_reasons.pop(root.i)
                    pending.append((root, "; ".join(reasons), True))
            elif kind == "unit":
                start, end = _span_chars(decision[1])
                tail = _place_tail(decision[1], token)
                if tail is not None and not any(t.i in self.removed_heads for t in tail.subtree):
                    end = tail.left_edge.idx  # "parked [next to a meter ]on a quiet street"
                self.ops.append(_Op(start, end, "", self._reason(reason, start, end), "delete"))
            else:
                start, end = self.sentence_range(decision[1])
                loose = _loose_item(token)
                if loose is not None and any(start <= c.start and c.end <= end for c in self.protected):
                    # a list the parser did not see: "a skier with skis[ and a backpack] stands"
                    self.ops.append(_Op(*loose, "", self._reason(reason, *loose), "delete"))
                    continue
                self.ops.append(
                    _Op(start, end, "", self._reason(reason + " (sentence)", start, end), "delete")
                )
        for root_i, removed in self.items.items():
            if self.emitted.get(root_i, (None,))[0] == frozenset(removed):
                continue
            stale = self.emitted.get(root_i, (None, []))[1]  # a later pass removed more items
            self.ops = [op for op in self.ops if all(op is not old for old in stale)]
            before = len(self.ops)
            self.remove_items(self.doc[root_i], removed, "; ".join(self.item_reasons[root_i]))
            self.emitted[root_i] = (frozenset(removed), self.ops[before:])

    def promote(self, noun: Any, reason: str) -> bool:
        """ "The image features a table with a bowl of fruit on it" - table -> "The image features a
        bowl of fruit": an absent object shown "with" a present one gives it its place, when the
        clause only says that it is there (the object of "features", "shows", "there is", ...)."""
        verb = noun.head
        if noun.dep_ not in ("dobj", "attr") or len(coordination_items(noun)) > 1 or noun.dep_ == "conj":
            return False
        if not (
            verb.lower_ in _EXISTENCE or (verb.lower_ in _BE and any(c.dep_ == "expl" for c in verb.children))
        ):
            return False
        after_noun = max(t.i for t in noun.subtree) + 1
        withs = [
            c
            for c in [*noun.children, *verb.children]
            if c.dep_ == "prep"
            and c.lower_ == "with"
            and (c.head.i == noun.i and c.i > noun.i or c.i == after_noun)
        ]  # fmt: skip  (the parser often hangs "with" on the verb)
        objects = [c for c in withs[0].children if c.dep_ == "pobj"] if withs else []
        if withs and not objects:  # "with a teddy bear sitting on it"
            for clause in withs[0].children:
                if clause.dep_ == "pcomp":
                    objects = [
                        c for c in clause.children if c.dep_ in ("nsubj", "nsubjpass") and c.i < clause.i
                    ]
        if not withs:  # "a potted plant next to a wooden armchair", "a cup on top of the table"
            places = [c for c in noun.children if c.i > noun.i]
            places += [c for c in verb.children if c.i == after_noun]  # hung on the verb
            objects = [o for o in map(_place_object, places) if o is not None][:1]
        if not objects or objects[0].tag_ not in _NOUN_TAGS:
            return False
        kept = objects[0]
        k_start, k_end = _span_chars(kept)
        if not any(
            k_start <= c.start and c.end <= k_end and c.label != self._label_at(noun) for c in self.protected
        ):
            return False
        start = noun.left_edge.idx
        joint = self.text[_span_chars(noun)[1] if withs else noun.idx + len(noun.text) : k_start].split()
        why = f" (its '{' '.join(joint[:1] if withs else joint)}' object stays)"
        self.ops.append(_Op(start, k_start, "", self._reason(reason + why, start, k_start), "delete"))
        first = self.doc[kept.left_edge.i]
        if first.lower_ == "the" and verb.lower_ in _BE:  # "there is [the ->] a table"
            plural = kept.tag_ in ("NNS", "NNPS")
            after = "" if plural else grammar.article_for(self.doc[first.i + 1].text)
            end = first.idx + len(first.text) + (len(first.whitespace_) if plural else 0)
            self.ops.append(_Op(first.idx, end, after, "article after 'there is'", "replace"))
        n_end = _span_chars(noun)[1]
        if n_end > k_end:  # the absent object's own modifiers after the "with" phrase
            self.ops.append(_Op(k_end, n_end, "", self._reason(reason, k_end, n_end), "delete"))
        pronoun = "them" if noun.tag_ in ("NNS", "NNPS") else "it"
        for token in noun.sent:  # "a bowl of fruit placed on it": "it" was the absent object
            if token.i <= kept.i or token.lower_ != pronoun or token.dep_ != "pobj":
                continue
            chain = [token]
            while chain[-1].head.i != chain[-1].i and chain[-1].i != kept.i:
                chain.append(chain[-1].head)
            clauses = [t for t in chain if t.dep_ in ("acl", "relcl", "advcl", "pcomp")]
            phrases = [t for t in chain if t.dep_ == "prep" and kept.i in {a.i for a in t.ancestors}]
            clause = clauses[-1] if clauses else phrases[-1] if phrases else None  # "placed on it", "on it"
            if clause is not None:
                a, b = _span_chars(clause)
                if a <= k_start < b:  # "with a teddy bear sitting on it": the bear stays
                    a = k_end
                self.ops.append(_Op(a, b, "", f"refers to a removed object: {token.text}", "delete"))
        self.agree(noun, plural=kept.tag_ in ("NNS", "NNPS"))
        return True

    def _label_at(self, token: Any) -> str | None:
        return next(
            (c.label for c in self.claims if c.kind == "object" and c.start <= token.idx < c.end), None
        )

    def dangling_pronouns(self) -> list[tuple[Any, str]]:
        """Pronouns whose antecedent was just removed ("A cup is on the table. It is red.")."""
        from halluguard.correctors.claims import _PRONOUNS, _antecedent

        deleted = [(op.start, op.end) for op in self.ops if op.kind == "delete"]
        mentions: list[Mention] = []
        gone: set[int] = set()
        for claim in self.claims:
            if claim.kind != "object":
                continue
            mention = self.mention_of(claim)
            if mention is None:
                continue
            mention.subject = group_root(self.doc[mention.last]).dep_ in ("nsubj", "nsubjpass", "attr")
            mentions.append(mention)
            if mention.last in self.removed_heads or any(
                a <= claim.start and claim.end <= b for a, b in deleted
            ):
                gone.add(len(mentions) - 1)
        if not gone:
            return []
        out = []
        for token in self.doc:
            if token.lower_ not in _PRONOUNS or any(a <= token.idx < b for a, b in deleted):
                continue
            antecedent = _antecedent(token, mentions)
            if antecedent is not None and mentions.index(antecedent) in gone:
                node = token.head if token.dep_ == "poss" else token
                out.append((node, f"refers to a removed object: {token.text}"))
        return out

    def _reason(self, reason: str, start: int, end: int) -> str:
        lost = [c.text for c in self.protected if start <= c.start and c.end <= end]
        return reason + (f" (also removes: {', '.join(lost)})" if lost else "")

    def climb(self, node: Any, whole_group: bool = False) -> tuple[Any, ...]:
        """Where removing ``node`` is grammatical: ("item", root, item), ("unit", token) or ("sentence", token)."""
        for _ in range(64):
            root = group_root(node)
            if not whole_group:
                items = coordination_items(root)
                if len(items) > 1:
                    item = node
                    while item not in items and item.i != root.i:
                        item = item.head
                    return ("item", root, item)
            whole_group = False
            node = root
            dep = node.dep_
            if dep == "ROOT" or node.head.i == node.i:
                return ("sentence", node)
            if dep == "pobj":
                top = _preposition_top(node)
                if top.lower_ == "of" and top.head.lower_ not in _CONTAINER_NOUNS:
                    node = top.head  # "a slice of pizza", "the presence of a dog": the noun phrase goes
                    continue
                if top.dep_ in _OPTIONAL_DEPS and not _is_predicate(top):
                    return ("unit", top)
                if top.i != node.head.i and _is_part_of(node.head):
                    # the clause needs its place: "is positioned in the middle of the bench" keeps
                    # "in the middle"
                    return ("unit", node.head)
                node = top.head
                continue
            if dep == "prep" and node.lower_ == "of" and node.head.lower_ in _NEEDS_OF:
                node = node.head
                continue
            if dep in _OPTIONAL_DEPS and not (dep in ("prep", "advmod", "agent") and _is_predicate(node)):
                return ("unit", node)
            if dep == "xcomp" and _is_purpose(node):
                return ("unit", node)
            if dep == "dobj" and node.head.lower_ in _OBJECT_OPTIONAL_VERBS:
                return ("unit", node)
            node = node.head
        return ("sentence", node)

    def _items_removable(self, root: Any, items: list[Any], removed: set[int]) -> bool:
        """Clauses sharing a subject: the first goes alone only when the next kept one can take
        the subject ("The player is wearing a glove and is standing" - "wearing" -> "The player is
        standing"; "A dog sits and chews" - "sits" -> "A dog chews")."""
        first = items[0]
        if first.i not in removed or not first.tag_.startswith(("VB", "MD")):
            return True
        remaining = [item for item in items if item.i not in removed]
        if not remaining:
            return True
        kept = remaining[0]
        if any(c.dep_ in _SUBJECT_DEPS for c in kept.children):
            return True
        return first.i not in self.subject_items and _shared_predicate_start(first, kept) is not None

    def remove_items(self, root: Any, removed: set[int], reason: str) -> None:
        items = coordination_items(root)
        spans = _item_spans(self.doc, items)
        keep = [k for k, item in enumerate(items) if item.i not in removed]
        if not keep:
            return
        conj = _conjunction(items)
        comma = ", "
        oxford = self.text[spans[-2][1] : spans[-1][0]].lstrip().startswith(",") and len(items) > 2
        ops: list[_Op] = []
        # leading removed items; a determiner the first item shares with the next stays:
        # "The chairs and umbrellas" - chairs -> "The umbrellas"
        preconj = next(
            (
                c
                for c in items[0].children
                if c.dep_ == "preconj" and c.lower_ in ("both", "either", "neither")
            ),
            None,
        )
        predicate_start = None
        if (
            keep[0] > 0
            and items[0].i not in self.subject_items
            and not any(c.dep_ in _SUBJECT_DEPS for c in items[keep[0]].children)
        ):
            predicate_start = _shared_predicate_start(items[0], items[keep[0]])
        if keep[0] > 0 and predicate_start is not None:
            # "The player [is wearing a glove and] is standing": the subject stays
            ops.append(_Op(predicate_start, spans[keep[0]][0], "", reason, "delete"))
        elif keep[0] > 0:
            start = spans[0][0]
            if len(keep) == 1 and preconj is not None and preconj.i < items[0].left_edge.i + 2:
                start = min(start, preconj.idx)  # "Both the dog and the cat" - dog -> "The cat"
            shared = _shared_determiner(items[0], items[keep[0]])
            if shared is not None:
                start = shared.idx + len(shared.text) + 1
                if shared.lower_ in ("a", "an"):
                    first_word = self.doc.char_span(
                        spans[keep[0]][0], spans[keep[0]][1], alignment_mode="expand"
                    )
                    article = grammar.match_case(shared.text, grammar.article_for(first_word[0].text))
                    if article != shared.text:
                        ops.append(
                            _Op(shared.idx, shared.idx + len(shared.text), article, "article", "delete")
                        )
            ops.append(_Op(start, spans[keep[0]][0], "", reason, "delete"))
        # trailing removed items; what the last one's trailing phrase says of the group stays
        if keep[-1] < len(items) - 1:
            end = spans[-1][1]
            tail = _shared_tail(items[-1], [items[k] for k in keep])
            if tail is not None and not any(t.i in self.removed_heads for t in tail.subtree):
                end = min(end, self.end_of(self.doc[tail.left_edge.i - 1]))
            ops.append(_Op(spans[keep[-1]][1], end, "", reason, "delete", keep_comma=True))
        if len(keep) == 1:
            # words for the whole group: "both the dog and the cat", "a bench and a can, both near"
            group = [preconj] if preconj is not None and keep[0] == 0 else []
            group += _group_quantifiers(items[0])
            for word in group:
                end = word.idx + len(word.text) + len(word.whitespace_)
                ops.append(_Op(word.idx, end, "", reason + " (one left)", "delete"))
        # separators between kept items
        n = len(keep)
        for j in range(n - 1):
            p, q = keep[j], keep[j + 1]
            old = self.text[spans[p][1] : spans[q][0]]
            if j == n - 2:
                new = f", {conj} " if (oxford and n > 2) else f" {conj} "
                if q == p + 1 and old.strip(" ,") and (n > 2 or not old.lstrip().startswith(",")):
                    continue  # already "a and b" / "a, b, and c"
            else:
                new = comma
            if q == p + 1 and (old == new or (j < n - 2 and old.strip() == ",")):
                continue
            ops.append(_Op(spans[p][1], spans[q][0], new, reason, "delete" if q != p + 1 else "replace"))
        for op in ops:
            op.reason = self._reason(op.reason, op.start, op.end)
        self.ops.extend(ops)
        if n == 1:
            self.agree(
                root,
                plural=items[keep[0]].tag_ in ("NNS", "NNPS") or not items[keep[0]].tag_.startswith("NN"),
            )

    def sentence_range(self, token: Any) -> tuple[int, int]:
        """The characters to delete to remove ``token``'s sentence, with one side's whitespace."""
        sentences = [s for s in self.doc.sents if s.text.strip()]
        sent = token.sent
        trimmed = [(_strip_span(s)) for s in sentences]
        start, end = _strip_span(sent)
        later = [s for s, _ in trimmed if s >= end]
        earlier = [e for _, e in trimmed if e <= start]
        after = self.text[end : later[0]] if later else ""
        before = self.text[earlier[-1] : start] if earlier else ""
        # keep paragraph breaks: the last sentence of a paragraph takes the space before it
        if later and ("\n" not in after or "\n" in before or not earlier):
            return start, later[0]
        return (earlier[-1] if earlier else start), end

    # ---------------------------------------------------------------- agreement

    def agree(self, noun: Any, plural: bool) -> None:
        """Make the verb of which ``noun`` (a group root) is the subject singular or plural."""
        verb = noun.head
        if noun.dep_ not in ("nsubj", "nsubjpass") and not (
            noun.dep_ == "attr" and any(c.dep_ == "expl" for c in verb.children)
        ):
            return
        finite = None
        for child in verb.children:
            if child.dep_ in ("aux", "auxpass") and child.tag_ in ("VBP", "VBZ", "VBD") and child.i < verb.i:
                finite = child
                break
        if finite is None and verb.tag_ in ("VBP", "VBZ", "VBD"):
            finite = verb
        tag = finite.tag_ if finite is not None else ""
        if (
            finite is None
            and verb.i > noun.i
            and not any(c.dep_ in ("aux", "auxpass") for c in verb.children)
        ):
            # "A woman and a dog stand": a present-tense verb tagged as a base form, or as a noun
            if verb.tag_ == "VB" or (verb.lower_ in _HOMOGRAPH_VERBS and not verb.tag_.startswith("VB")):
                finite = verb
                tag = "VBZ" if verb.lower_.endswith("s") and verb.tag_ != "VB" else "VBP"
        if finite is None or tag == "VBD" and finite.lower_ not in ("was", "were"):
            return
        word = finite.text
        new = grammar.verb_plural(word) if plural else grammar.verb_singular(word)
        if tag == "VBZ" and not plural or tag == "VBP" and plural:
            return
        if finite.lower_ == "was" and not plural or finite.lower_ == "were" and plural:
            return
        if new != word:
            self.ops.append(_Op(finite.idx, self.end_of(finite), new, "agreement", "replace"))

    # ---------------------------------------------------------------- counts, colours, relations

    def fix_count(self, claim: Claim) -> None:
        seen = _seen(claim)
        mention = self.mention_of(claim)
        if seen is None or seen <= 0 or mention is None:
            return
        found = quantifier(self.doc, mention)
        if found is None:
            return
        q_start, q_end = found[0], found[1]
        head = self.doc[mention.last]
        word = grammar.number_word(seen)
        if self._at_sentence_start(q_start):
            word = word[:1].upper() + word[1:]
        reason = f"count: {claim.text} -> {seen} seen"
        self.ops.append(_Op(q_start, q_end, word, reason, "replace"))
        now_plural = seen != 1
        if now_plural != mention.plural:
            noun = grammar.plural_noun(head.text) if now_plural else grammar.singular_noun(head.text)
            if noun != head.text:
                self.ops.append(_Op(head.idx, self.end_of(head), noun, reason, "replace"))
            root = group_root(head)
            if len(coordination_items(root)) == 1:
                self.agree(root, now_plural)

    def fix_attribute(self, claim: Claim) -> None:
        observed = claim.evidence.get("attribute") if isinstance(claim.evidence, dict) else None
        span = self.doc.char_span(claim.start, claim.end, alignment_mode="expand")
        if span is None:
            return
        colours = [t for t in span if colour_of(t)]
        if not colours:
            return
        colour = colours[-1] if span[-1].i == colours[-1].i else colours[0]
        start = colour.idx
        i = colour.i
        while i > span.start and self.doc[i - 1].lower_ in (
            "dark",
            "light",
            "bright",
            "pale",
            "deep",
            "vivid",
            "pastel",
            "-",
        ):
            i -= 1
            start = self.doc[i].idx
        end = self.end_of(colour)
        if observed and isinstance(observed, str):
            if colour_of(colour) == observed and start == colour.idx:
                return
            new = grammar.match_case(self.text[start:end], observed)
            self.ops.append(_Op(start, end, new, f"colour: {claim.attribute} -> {observed}", "replace"))
            self._fix_article(i, new)
            return
        if colour.dep_ in ("acomp", "attr"):  # "the car is red": the clause goes
            self.remove_nodes([(colour, f"colour not seen: {claim.text}")])
            return
        after = end
        while after < len(self.text) and self.text[after] == " ":
            after += 1
        self.ops.append(_Op(start, after, "", f"colour not seen: {claim.text}", "delete"))
        following = self.doc.char_span(after, after + 1, alignment_mode="expand")
        if following is not None and len(following):
            self._fix_article(i, following[0].text)

    def _fix_article(self, first_index: int, next_word: str) -> None:
        if first_index == 0:
            return
        article = self.doc[first_index - 1]
        if article.lower_ in ("a", "an"):
            new = grammar.match_case(article.text, grammar.article_for(next_word))
            if new != article.text:
                self.ops.append(_Op(article.idx, self.end_of(article), new, "article", "replace"))

    def fix_relation(self, claim: Claim) -> None:
        observed = claim.evidence.get("relation") if isinstance(claim.evidence, dict) else None
        if _seen(claim) == 0 and self._absent_object_removed(claim):
            return  # no such subject or target: removing that object removes the relation with it
        target = self.head_of(claim)
        if target is None:
            return
        found = relation_phrase(target)
        if found is None:
            return
        relation, first = found
        prep = target.head
        start, end = first.idx, self.end_of(prep)
        if observed in RELATIONS:
            if observed == relation:
                return
            new = grammar.match_case(self.text[start:end], RELATIONS[observed])
            self.ops.append(_Op(start, end, new, f"relation: {relation} -> {observed}", "replace"))
            return
        top = first
        if top.dep_ in _OPTIONAL_DEPS and not _is_predicate(top):
            s, e = _span_chars(top)
            self.ops.append(_Op(s, e, "", f"relation not seen: {claim.text}", "delete"))
        else:
            self.remove_nodes([(top, f"relation not seen: {claim.text}")])

    def _absent_object_removed(self, claim: Claim) -> bool:
        """Whether the relation's subject or target, when the detector found none, is a mention
        this rewrite removes (a pronoun counts through its clause's removal)."""
        removed = [
            c for i, c in enumerate(self.claims)
            if c.kind == "object" and i in self.removed and claim.start <= c.start and c.end <= claim.end
        ]  # fmt: skip
        missing = claim.evidence.get("missing") if isinstance(claim.evidence, dict) else None
        wanted = claim.target if missing == "target" else claim.label
        if any(c.label == wanted for c in removed):
            return True
        deleted = [(op.start, op.end) for op in self.ops if op.kind == "delete"]
        return any(a <= claim.start and claim.end <= b for a, b in deleted)

    # ---------------------------------------------------------------- hedging, grounding

    def hedge(self, claim: Claim) -> None:
        head = self.head_of(claim)
        if head is None:
            return
        reason = f"suspicious: {claim.text} (hedged)"
        root = group_root(head)
        items = coordination_items(root)
        if len(items) > 1:
            item = head
            while item not in items:
                item = item.head
            start = _item_spans(self.doc, items)[items.index(item)][0]
            self.ops.append(_Op(start, start, "possibly ", reason, "insert"))
            return
        verb = root.head
        if root.dep_ == "attr" and any(c.dep_ == "expl" for c in verb.children) and verb.lower_ in _BE:
            new = "may be" if verb.lower_ in ("is", "are", "'s", "'re") else "may have been"
            if verb.lower_ in ("'s", "'re"):
                new = " " + new
            self.ops.append(_Op(verb.idx, self.end_of(verb), new, reason, "replace"))
            return
        if root.dep_ in ("nsubj", "nsubjpass"):
            finite = [c for c in verb.children if c.dep_ in ("aux", "auxpass") and c.lower_ in _BE]
            if verb.lower_ in _BE:
                finite = [verb]
            if finite and finite[0].lower_ in ("is", "are", "was", "were"):
                be = finite[0]
                new = "may be" if be.lower_ in ("is", "are") else "may have been"
                self.ops.append(_Op(be.idx, self.end_of(be), new, reason, "replace"))
                return
        start = root.left_edge.idx
        first = root.left_edge
        if self._at_sentence_start(start):
            lowered = first.text if first.tag_ in ("NNP", "NNPS") else first.text[:1].lower() + first.text[1:]
            self.ops.append(_Op(start, self.end_of(first), "What may be " + lowered, reason, "replace"))
        else:
            self.ops.append(_Op(start, start, "what may be ", reason, "insert"))

    def ground(self) -> None:
        seen: set[str] = set()
        for claim in self.claims:
            if claim.kind != "object" or claim.verdict != "supported" or claim.label in seen:
                continue
            boxes = claim.evidence.get("boxes") if isinstance(claim.evidence, dict) else None
            if not boxes:
                continue
            scores = claim.evidence.get("scores") or [0.0] * len(boxes)
            ranked = [b for _, b in sorted(zip(scores, boxes), key=lambda sb: -float(sb[0]))]
            head = self.head_of(claim)
            plural = head is not None and head.tag_ in ("NNS", "NNPS")
            chosen = ranked if plural else ranked[:1]
            text = "; ".join(", ".join(str(round(float(v))) for v in box) for box in chosen)
            seen.add(claim.label)
            self.ops.append(_Op(claim.end, claim.end, f" [{text}]", f"grounding: {claim.label}", "insert"))

    def _at_sentence_start(self, char: int) -> bool:
        span = self.doc.char_span(char, char + 1, alignment_mode="expand")
        if span is None or len(span) == 0:
            return False
        token = span[0]
        return token.is_sent_start or token.i == 0 or self.doc[token.i - 1].is_space and token.idx == char


def _seen(claim: Claim) -> int | None:
    evidence = claim.evidence if isinstance(claim.evidence, dict) else {}
    value = evidence.get("count")
    if value is None and isinstance(evidence.get("boxes"), list):
        value = len(evidence["boxes"])
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------- syntax helpers


def coordination_items(root: Any) -> list[Any]:
    """The conjuncts of the coordination headed by ``root`` (itself first), in text order."""
    items = [root]
    stack = [root]
    while stack:
        node = stack.pop()
        for child in node.children:
            if child.dep_ == "conj" or (
                child.dep_ == "appos"
                and child.tag_ in _NOUN_TAGS
                and any(c.dep_ in ("conj", "cc") for c in child.children)
            ):
                items.append(child)
                stack.append(child)
    return sorted(items, key=lambda t: t.i)


def _group_quantifiers(root: Any) -> list[Any]:
    """ "both"/"all" opening a modifier of a coordination ("a bench and a trash can, both located near
    the players"), which must go when one item is left."""
    doc = root.doc
    end = max(t.i for t in root.subtree) + 1
    if end < len(doc) and doc[end].text == ",":
        end += 1
    modifiers = list(root.children)
    if end < len(doc) and doc[end].head.left_edge.i == end:
        modifiers.append(doc[end].head)  # the parser often hangs it on the verb
    out = []
    for child in modifiers:
        if child.dep_ not in ("acl", "relcl", "amod", "appos", "advcl") or child.i < root.i:
            continue
        first = child.left_edge
        if first.lower_ in ("both", "all") and first.head.i == child.i and not list(first.children):
            out.append(first)
    return out


def _shared_predicate_start(first: Any, kept: Any) -> int | None:
    """Where to start deleting the first of two predicates that share a subject, so that the
    subject stays and ``kept`` has a finite verb: the first's auxiliaries go when ``kept`` has its
    own or is finite ("is wearing a glove and is standing"), else they stay ("is wearing a glove
    and standing" -> "is standing"). ``None`` when that cannot be done."""
    if not first.tag_.startswith(("VB", "MD")) or not kept.tag_.startswith(("VB", "MD")):
        return None
    subjects = [c for c in first.children if c.dep_ in ("nsubj", "nsubjpass") and c.i < first.i]
    if not subjects:
        return None
    subject_end = max(t.i for t in subjects[0].subtree)
    between = [c for c in first.children if subject_end < c.i < first.i]
    if any(c.dep_ not in ("aux", "auxpass", "neg", "advmod") for c in between):
        return None
    auxiliaries = [c for c in between if c.dep_ in ("aux", "auxpass")]
    kept_finite = kept.tag_ in ("VBZ", "VBP", "VBD", "MD") or any(
        c.dep_ in ("aux", "auxpass") and c.i < kept.i for c in kept.children
    )
    if kept_finite:
        return between[0].idx if between else first.idx
    if auxiliaries and kept.tag_ in ("VBG", "VBN", "VB"):
        after = [c for c in between if c.i > auxiliaries[-1].i]
        return after[0].idx if after else first.idx
    return None


def _own_span(item: Any, items: list[Any]) -> tuple[int, int]:
    """Characters of one conjunct without the other conjuncts, conjunctions and list commas."""
    excluded: set[int] = set()
    item_ids = {t.i for t in items}
    first_other = None
    for child in item.children:
        if child.i in item_ids or child.dep_ in ("cc", "preconj"):
            excluded.update(t.i for t in child.subtree)
            if child.i > item.i and (first_other is None or child.i < first_other):
                first_other = child.i
    tokens = [
        t for t in item.subtree
        if t.i not in excluded and not (first_other is not None and t.i > first_other)
        and not (t.is_punct and t.head.i == item.i and t.i > item.i and first_other is not None and t.i < first_other
                 and _only_punct_until(t, first_other))
    ]  # fmt: skip
    while tokens and (tokens[-1].is_punct or tokens[-1].is_space or tokens[-1].dep_ == "cc"):
        tokens.pop()  # a conjunction hung inside it ("a girl with a kite [and] a dog")
    while tokens and (tokens[0].is_punct or tokens[0].is_space):
        tokens.pop(0)
    if not tokens:
        return item.idx, item.idx + len(item.text)
    return tokens[0].idx, tokens[-1].idx + len(tokens[-1].text)


def _only_punct_until(token: Any, stop: int) -> bool:
    doc = token.doc
    return all(doc[i].is_punct or doc[i].is_space or doc[i].dep_ == "cc" for i in range(token.i, stop))


def _shared_determiner(first: Any, kept: Any) -> Any | None:
    """The determiner of the first conjunct when the kept one has none of its own and it fits it."""
    if not (first.tag_ in _NOUN_TAGS and kept.tag_ in _NOUN_TAGS):
        return None
    if any(c.dep_ in ("det", "poss", "nummod") for c in kept.children):
        return None
    dets = [c for c in first.children if c.dep_ in ("det", "poss") and c.i == first.left_edge.i]
    if not dets:
        return None
    det = dets[0]
    if det.lower_ in ("a", "an", "this", "that", "each", "every", "one") and kept.tag_ in ("NNS", "NNPS"):
        return None
    if det.lower_ in ("these", "those", "both") and kept.tag_ not in ("NNS", "NNPS"):
        return None
    return det


def _item_spans(doc: Any, items: list[Any]) -> list[tuple[int, int]]:
    """Character spans of the conjuncts; words between two conjuncts that are neither
    punctuation nor the conjunction ("cups and bowls placed on the counter, as well as a toaster")
    go with the conjunct before them, so that separators are only commas and conjunctions."""
    spans = [_own_span(item, items) for item in items]
    for k in range(len(spans) - 1):
        between = [t for t in doc if spans[k][1] <= t.idx and t.idx + len(t.text) <= spans[k + 1][0]]
        content = [t for t in between if not (t.is_punct or t.is_space or _in_conjunction(t))]
        if content:
            last = content[-1]
            spans[k] = (spans[k][0], last.idx + len(last.text))
    return spans


def _in_conjunction(token: Any) -> bool:
    node = token
    for _ in range(3):
        if node.dep_ in ("cc", "preconj"):
            return True
        node = node.head
    return False


def _conjunction(items: list[Any]) -> str:
    """The coordinating conjunction of a group ("and", "or", "as well as")."""
    ccs = [c for item in items for c in item.children if c.dep_ == "cc"]
    if not ccs:
        return "and"
    last = max(ccs, key=lambda t: t.i)
    return " ".join(t.text for t in last.subtree)


def _loose_item(noun: Any) -> tuple[int, int] | None:
    """The characters of ``noun``'s phrase and the "and"/"or" that joins it to the noun before it
    (or after it), judged from the words alone, for lists the parser did not see ("a skier with
    skis and a backpack stands", parsed with two subjects); ``None`` when it is not so joined."""
    doc = noun.doc
    if noun.tag_ not in _NOUN_TAGS or any(c.i > noun.i for c in noun.children):
        return None
    first = noun.i
    while first > 0 and doc[first - 1].head.i == noun.i and doc[first - 1].dep_ in _NOUN_MODIFIER_DEPS:
        first -= 1
    end = noun.idx + len(noun.text)
    joint = first - 1
    if joint >= 1 and doc[joint].lower_ in ("and", "or"):
        before = joint - 1 - (doc[joint - 1].text == ",")
        if before >= 0 and doc[before].tag_ in _NOUN_TAGS:
            return doc[before].idx + len(doc[before].text), end
    after = noun.i + 1
    joins_next = after + 1 < len(doc) and doc[after].lower_ in ("and", "or")
    if joins_next and doc[after + 1].dep_ in _NOUN_MODIFIER_DEPS:
        if first > 0 and doc[first - 1].dep_ == "prep":
            return doc[first].idx, doc[after + 1].idx
    return None


def _place_phrases(noun: Any) -> list[Any]:
    """The place phrases after ``noun`` that modify it ("a dog [on a bed]")."""
    return [c for c in noun.children if c.i > noun.i and _place_object(c) is not None]


def _shared_tail(last: Any, kept: list[Any]) -> Any | None:
    """The phrase after the last conjunct ``last`` that the parser hung on it but that speaks of the
    whole group ("a cat and a dog [sleeping on the couch]", "two cats and a dog [on a bed]"): its
    first participle clause or place phrase, when no kept conjunct has a phrase after it of its own."""
    if last.tag_ not in _NOUN_TAGS:
        return None
    for item in kept:
        if any(c.i > item.i and c.dep_ in ("acl", "relcl", "prep") for c in item.children):
            return None
    tails = [
        c for c in last.children
        if c.i > last.i and (c.dep_ == "acl" and c.tag_ in ("VBG", "VBN") or c in _place_phrases(last))
    ]  # fmt: skip
    return min(tails, key=lambda t: t.i) if tails else None


def _place_tail(unit: Any, noun: Any) -> Any | None:
    """A place phrase after ``noun`` at the end of ``unit`` (a phrase of a verb that goes with the
    noun) that says where the verb's subject is: "is parked next to a meter [on a quiet street]"."""
    if not unit.head.tag_.startswith("VB") or noun.tag_ not in _NOUN_TAGS:
        return None
    places = _place_phrases(noun)
    if not places or max(t.i for t in unit.subtree) != max(t.i for t in places[-1].subtree):
        return None
    return places[0]


def _place_object(modifier: Any) -> Any | None:
    """The object of a place phrase modifying a noun: "on the table", "next to a chair", "on top of
    the table", "to the left of the sofa" -> the table, the chair, the table, the sofa."""
    prep = modifier
    if modifier.dep_ in ("advmod", "amod") and modifier.lower_ in ("next", "close"):
        prep = next((c for c in modifier.children if c.dep_ == "prep" and c.lower_ == "to"), None)
    if prep is None or prep.dep_ != "prep" or prep.lower_ not in _PLACE_PREPOSITIONS | {"to"}:
        return None
    obj = next((c for c in prep.children if c.dep_ == "pobj"), None)
    if prep.lower_ == "to" and modifier is prep and (obj is None or obj.lower_ not in _RELATIONAL_NOUNS):
        return None  # "to a friend": no place; "to the left of" is one
    while obj is not None and obj.lower_ in _RELATIONAL_NOUNS:  # "the left of the sofa": the sofa
        of = next((c for c in obj.children if c.dep_ == "prep" and c.lower_ == "of"), None)
        if of is None:
            break  # "at the corner"
        obj = next((c for c in of.children if c.dep_ == "pobj"), None)
    return obj if obj is not None and obj.tag_ in _NOUN_TAGS else None


def _preposition_top(pobj: Any) -> Any:
    """The first word of the preposition governing ``pobj`` ("in" of "in front of")."""
    prep = pobj.head
    while prep.lower_ == "of" and prep.head.dep_ == "pobj" and prep.head.lower_ in _RELATIONAL_NOUNS:
        prep = prep.head.head
    if (
        prep.lower_ == "to"
        and prep.head.lower_ in ("next", "close")
        and prep.head.dep_ in ("advmod", "amod", "prep", "acomp")
    ):
        prep = prep.head
    return prep


def _is_part_of(of: Any) -> bool:
    """ "of" after a noun of place that can stand alone ("the middle of", "the left side of",
    "the edge of"; not "in front of" or "on top of", which need their object)."""
    return (
        of.lower_ == "of"
        and of.head.lower_ in _PART_NOUNS
        and of.head.dep_ == "pobj"
        and any(c.dep_ == "det" for c in of.head.children)
    )


def _is_predicate(top: Any) -> bool:
    """A place phrase the clause needs: "The cat is on the bed", "The bottle is located on ..."."""
    head = top.head
    low = head.lower_
    if low not in _BE and low not in _LOCATIVE_VERBS and low not in _COMPLEMENT_VERBS:
        return False
    if any(c.dep_ == "expl" for c in head.children):
        return False
    if low in _STANDALONE_LOCATIVES:
        return False
    others = [
        c for c in head.children
        if c.i != top.i and c.dep_ in ("prep", "advmod", "acomp", "attr", "xcomp", "dobj", "oprd")
        and not c.is_punct and c.lower_ not in ("also", "not", "n't", "additionally", "there")
    ]  # fmt: skip
    return not others


def _is_purpose(verb: Any) -> bool:
    """An infinitive of purpose after a verb that has its object ("using a knife to cut the cake")."""
    head = verb.head
    return any(c.dep_ == "aux" and c.lower_ == "to" for c in verb.children) and any(
        c.dep_ == "dobj" and c.i < verb.i for c in head.children
    )


def _span_chars(token: Any) -> tuple[int, int]:
    tokens = [t for t in token.subtree]
    while tokens and (tokens[-1].is_punct or tokens[-1].is_space):
        tokens.pop()
    while tokens and (tokens[0].is_punct or tokens[0].is_space):
        tokens.pop(0)
    return tokens[0].idx, tokens[-1].idx + len(tokens[-1].text)


def _strip_span(span: Any) -> tuple[int, int]:
    tokens = [t for t in span if not t.is_space]
    if not tokens:
        return span.start_char, span.start_char
    return tokens[0].idx, tokens[-1].idx + len(tokens[-1].text)


# ---------------------------------------------------------------------- from ops to edits


def _finish(text: str, doc: Any, ops: list[_Op]) -> list[Edit]:
    """Resolve conflicts (removals win), tidy punctuation and capitals, and build the edits."""
    removals = [op for op in ops if op.kind == "delete"]
    others = [op for op in ops if op.kind != "delete"]
    removals = _merge(
        [_tidy(text, doc, op) if op.after == "" else op for op in _join_spaces(text, _merge(removals))]
    )
    removals = _paragraphs(text, removals)
    kept: list[_Op] = list(removals)
    for op in others:
        clash = False
        for other in kept:
            if op.kind == "insert" and other.kind == "insert":
                clash = op.start == other.start
            elif op.start == op.end:  # insertion
                clash = other.start < op.start < other.end or (
                    other.start == op.start and other.end > other.start and other.after == ""
                )
            else:
                clash = op.start < other.end and other.start < op.end
            if clash:
                break
        if not clash:
            kept.append(op)
    kept.sort(key=lambda o: (o.start, o.end))
    kept = _capitalise(text, doc, kept)
    kept = _sentence_case(text, doc, kept)
    edits = []
    for op in kept:
        if text[op.start : op.end] == op.after:
            continue
        edits.append(Edit(op.start, op.end, text[op.start : op.end], op.after, op.reason))
    return edits


def _join_spaces(text: str, ops: list[_Op]) -> list[_Op]:
    """Deletions with only spaces between them become one ("sitting [at a table] [in a train car].")
    so that tidying sees what is really left on either side."""
    out: list[_Op] = []
    for op in sorted(ops, key=lambda o: (o.start, o.end)):
        last = out[-1] if out else None
        if (
            last is not None and last.after == "" and op.after == "" and last.kind == op.kind == "delete"
            and last.end <= op.start and set(text[last.end : op.start]) <= {" "}
        ):  # fmt: skip
            out[-1] = _Op(last.start, op.end, "", last.reason + "; " + op.reason, "delete", op.keep_comma)
        else:
            out.append(op)
    return out


def _paragraphs(text: str, ops: list[_Op]) -> list[_Op]:
    """Deletions separated only by whitespace leave one run of it, the strongest (a paragraph
    break before a line break before a space), and none at the start or end of the text: "A cat
    sleeps. A man holds an umbrella.\n\nA bench stands.\n\nThe sky is blue." minus the umbrella and
    the bench -> "A cat sleeps.\n\nThe sky is blue." (not "A cat sleeps. \n\n\n\nThe sky ...")."""
    ops = sorted(ops, key=lambda o: (o.start, o.end))
    out: list[_Op] = []
    k = 0
    while k < len(ops):
        chain = [ops[k]]
        while (
            k + 1 < len(ops) and chain[-1].after == "" and ops[k + 1].after == ""
            and chain[-1].end <= ops[k + 1].start and not text[chain[-1].end : ops[k + 1].start].strip()
        ):  # fmt: skip
            k += 1
            chain.append(ops[k])
        k += 1
        if any(op.after != "" for op in chain):
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
        out.extend(_Op(i, j, "", reason, "delete") for i, j in merged)
    return out


def _merge(ops: list[_Op]) -> list[_Op]:
    """Union overlapping removals. A removal that reaches further carries its replacement text
    (a list separator such as " and ") into the union; one inside another disappears."""
    ops = sorted(ops, key=lambda o: (o.start, -o.end))
    out: list[_Op] = []
    for op in ops:
        if out and op.start < out[-1].end:
            last = out[-1]
            if op.end > last.end:
                last.end = op.end
                last.after = op.after or last.after
            if op.reason not in last.reason:
                last.reason += "; " + op.reason
            continue
        out.append(_Op(op.start, op.end, op.after, op.reason, op.kind, op.keep_comma))
    return out


def _tidy(text: str, doc: Any, op: _Op) -> _Op:
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
    return _Op(a, b, "", op.reason, op.kind, op.keep_comma)


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
    if any(c.dep_ in _SUBJECT_DEPS for c in conjuncts[0].children):
        return True
    return len(coordination_items(group_root(conjuncts[0]))) > 2  # "a girl, and a dog": a serial comma


def _starts_sentence(text: str, position: int) -> bool:
    before = text[:position].rstrip()
    return not before or before[-1] in ".!?\n:"


_SENTENCE_START = re.compile(r"(?:^\s*|[.!?]\s+)([A-Za-z])")


def _sentence_case(text: str, doc: Any, ops: list[_Op]) -> list[_Op]:
    """Make every sentence of the result start with a capital, whatever edit put a word there
    ("..., and a clock" - the clause -> "What may be a clock", "a few people" -> "One person"), and
    lower-case a word that no longer starts one ("possibly The man" -> "Possibly the man"). Words
    already so in the original are left alone."""
    ops = sorted(ops, key=lambda o: (o.start, o.end))
    pieces: list[tuple[str, int, int]] = []  # (text, op index or -1, original offset of piece)
    position = 0
    for k, op in enumerate(ops):
        pieces.append((text[position : op.start], -1, position))
        pieces.append((op.after, k, op.start))
        position = op.end
    pieces.append((text[position:], -1, position))
    output = "".join(p for p, _, _ in pieces)
    owner: list[tuple[int, int]] = []  # for each output character: (op index or -1, offset)
    for piece, k, origin in pieces:
        owner.extend((k, i if k >= 0 else origin + i) for i in range(len(piece)))
    original_starts = {m.start(1) for m in _SENTENCE_START.finditer(text)}
    upper: dict[int, list[int]] = {}  # op index -> offsets in its replacement to capitalise
    extra: list[_Op] = []
    starts = {m.start(1) for m in _SENTENCE_START.finditer(output)}
    for j in sorted(starts):
        k, i = owner[j]
        if output[j].isupper():
            continue
        if k >= 0:
            upper.setdefault(k, []).append(i)
        elif i not in original_starts:
            extra.append(_Op(i, i + 1, text[i].upper(), "capital", "replace"))
    for j, (k, i) in enumerate(owner):  # an original capital that no longer starts a sentence
        if k >= 0 or j in starts or i not in original_starts or not output[j].isupper() or j == 0:
            continue
        if owner[j - 1][0] < 0 or not ops[owner[j - 1][0]].after.strip():
            continue  # only after an inserted word ("possibly The man")
        span = doc.char_span(i, i + 1, alignment_mode="expand")
        if span is not None and len(span) and span[0].tag_ not in ("NNP", "NNPS") and span[0].text != "I":
            extra.append(_Op(i, i + 1, text[i].lower(), "not a sentence start", "replace"))
    out = []
    for k, op in enumerate(ops):
        if k in upper:
            after = list(op.after)
            for i in upper[k]:
                after[i] = after[i].upper()
            op = _Op(op.start, op.end, "".join(after), op.reason, op.kind, op.keep_comma)
        out.append(op)
    return sorted(out + extra, key=lambda o: (o.start, o.end))


def _capitalise(text: str, doc: Any, ops: list[_Op]) -> list[_Op]:
    """Capitalise the word that now starts a sentence after a deletion at its start."""
    out = []
    for op in ops:
        if op.kind == "delete" and op.after == "" and _starts_sentence(text, op.start):
            b = op.end
            if b < len(text) and text[b].islower():
                clash = any(o.start <= b < o.end or o.start == b for o in ops if o is not op)
                if not clash:
                    out.append(_Op(op.start, b + 1, text[b].upper(), op.reason, op.kind))
                    continue
        out.append(op)
    return out
