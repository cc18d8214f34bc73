"""Promotion: an absent object shown "with" (or next to, on ...) a present one gives it its place
("The image features a table with a bowl of fruit on it" - table -> "The image features a bowl of
fruit")."""

from __future__ import annotations

from typing import Any

from halluguard.correctors import grammar
from halluguard.correctors.rewriting.agreement import agree
from halluguard.correctors.rewriting.coordination import coordination_items
from halluguard.correctors.rewriting.phrases import place_object, span_chars
from halluguard.correctors.rewriting.plan import Plan, Removal, Replacement
from halluguard.correctors.words import EXISTENCE_VERBS, FINITE_BE, NOUN_TAGS, PLURAL_NOUN_TAGS


def promote(plan: Plan, noun: Any, reason: str) -> bool:
    """ "The image features a table with a bowl of fruit on it" - table -> "The image features a
    bowl of fruit": an absent object shown "with" a present one gives it its place, when the
    clause only says that it is there (the object of "features", "shows", "there is", ...)."""
    verb = noun.head
    if noun.dep_ not in ("dobj", "attr") or len(coordination_items(noun)) > 1 or noun.dep_ == "conj":
        return False
    if not (
        verb.lower_ in EXISTENCE_VERBS
        or (verb.lower_ in FINITE_BE and any(c.dep_ == "expl" for c in verb.children))
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
                objects = [c for c in clause.children if c.dep_ in ("nsubj", "nsubjpass") and c.i < clause.i]
    if not withs:  # "a potted plant next to a wooden armchair", "a cup on top of the table"
        places = [c for c in noun.children if c.i > noun.i]
        places += [c for c in verb.children if c.i == after_noun]  # hung on the verb
        objects = [o for o in map(place_object, places) if o is not None][:1]
    if not objects or objects[0].tag_ not in NOUN_TAGS:
        return False
    kept = objects[0]
    k_start, k_end = span_chars(kept)
    label = plan.label_at(noun)
    kept_claims = [c for c in plan.protected if k_start <= c.start and c.end <= k_end and c.label != label]
    if not kept_claims:
        return False
    named_elsewhere = [
        any(o.label == c.label and not k_start <= o.start < k_end for o in plan.protected)
        for c in kept_claims
    ]
    if not withs and all(named_elsewhere):
        return False  # the place is named elsewhere too: nothing is lost when the clause goes
    start = noun.left_edge.idx
    joint = plan.text[span_chars(noun)[1] if withs else noun.idx + len(noun.text) : k_start].split()
    why = f" (its '{' '.join(joint[:1] if withs else joint)}' object stays)"
    plan.ops.append(Removal(start, k_start, plan.with_losses(reason + why, start, k_start)))
    first = plan.doc[kept.left_edge.i]
    if first.lower_ == "the" and verb.lower_ in FINITE_BE:  # "there is [the ->] a table"
        plural = kept.tag_ in PLURAL_NOUN_TAGS
        after = "" if plural else grammar.article_for(plan.doc[first.i + 1].text)
        end = first.idx + len(first.text) + (len(first.whitespace_) if plural else 0)
        plan.ops.append(Replacement(first.idx, end, after, "article after 'there is'"))
    n_end = span_chars(noun)[1]
    if n_end > k_end:  # the absent object's own modifiers after the "with" phrase
        plan.ops.append(Removal(k_end, n_end, plan.with_losses(reason, k_end, n_end)))
    pronoun = "them" if noun.tag_ in PLURAL_NOUN_TAGS else "it"
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
            a, b = span_chars(clause)
            if a <= k_start < b:  # "with a teddy bear sitting on it": the bear stays
                a = k_end
            plan.ops.append(Removal(a, b, f"refers to a removed object: {token.text}"))
    agree(plan, noun, plural=kept.tag_ in PLURAL_NOUN_TAGS)
    return True
