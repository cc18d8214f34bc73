"""Fixing a contradicted count ("three people" -> "two people"), colour ("a red car" -> "a blue
car") or relation ("to the left of" -> "to the right of") from what the detector observed, or
removing it when nothing was observed."""

from __future__ import annotations

from halluguard.correctors import grammar
from halluguard.correctors.attributes import colour_of
from halluguard.correctors.colours import COLOUR_SHADES
from halluguard.correctors.counts import quantifier
from halluguard.correctors.mentions import group_root
from halluguard.correctors.relations import relation_phrase
from halluguard.correctors.rewriting.agreement import agree
from halluguard.correctors.rewriting.coordination import coordination_items
from halluguard.correctors.rewriting.phrases import OPTIONAL_DEPS, is_predicate, span_chars
from halluguard.correctors.rewriting.plan import Plan, Removal, Replacement, end_of, seen_count
from halluguard.correctors.rewriting.removal import remove_nodes
from halluguard.correctors.words import RELATIONS
from halluguard.records import Claim

#: the words before a colour that go when the colour is replaced or removed ("dark blue" -> "red"):
#: its shades and a hyphen ("dark-blue"), but not "navy", which the claim reads as a colour itself
_SHADE_WORDS = (COLOUR_SHADES - {"navy"}) | {"-"}


def fix_count(plan: Plan, claim: Claim) -> None:
    """Write the count the detector saw ("two dogs are" -> "one dog is")."""
    seen = seen_count(claim)
    mention = plan.mention_of(claim)
    if seen is None or seen <= 0 or mention is None:
        return
    found = quantifier(plan.doc, mention)
    if found is None:
        return
    q_start, q_end = found[0], found[1]
    head = plan.doc[mention.last]
    word = grammar.number_word(seen)
    if plan.at_sentence_start(q_start):
        word = word[:1].upper() + word[1:]
    reason = f"count: {claim.text} -> {seen} seen"
    plan.ops.append(Replacement(q_start, q_end, word, reason))
    now_plural = seen != 1
    if now_plural != mention.plural:
        noun = grammar.plural_noun(head.text) if now_plural else grammar.singular_noun(head.text)
        if noun != head.text:
            plan.ops.append(Replacement(head.idx, end_of(head), noun, reason))
        root = group_root(head)
        if len(coordination_items(root)) == 1:
            agree(plan, root, now_plural)


def fix_attribute(plan: Plan, claim: Claim) -> None:
    """Write the colour observed, or remove the colour word (the clause of "the car is red")."""
    observed = claim.evidence.get("attribute") if isinstance(claim.evidence, dict) else None
    span = plan.doc.char_span(claim.start, claim.end, alignment_mode="expand")
    if span is None:
        return
    colours = [t for t in span if colour_of(t)]
    if not colours:
        return
    colour = colours[-1] if span[-1].i == colours[-1].i else colours[0]
    start = colour.idx
    i = colour.i
    while i > span.start and plan.doc[i - 1].lower_ in _SHADE_WORDS:
        i -= 1
        start = plan.doc[i].idx
    end = end_of(colour)
    if observed and isinstance(observed, str):
        if colour_of(colour) == observed and start == colour.idx:
            return
        new = grammar.match_case(plan.text[start:end], observed)
        plan.ops.append(Replacement(start, end, new, f"colour: {claim.attribute} -> {observed}"))
        _fix_article(plan, i, new)
        return
    if colour.dep_ in ("acomp", "attr"):  # "the car is red": the clause goes
        remove_nodes(plan, [(colour, f"colour not seen: {claim.text}")])
        return
    after = end
    while after < len(plan.text) and plan.text[after] == " ":
        after += 1
    plan.ops.append(Removal(start, after, f"colour not seen: {claim.text}"))
    following = plan.doc.char_span(after, after + 1, alignment_mode="expand")
    if following is not None and len(following):
        _fix_article(plan, i, following[0].text)


def _fix_article(plan: Plan, first_index: int, next_word: str) -> None:
    """Fit "a"/"an" before token ``first_index`` to the word that now follows it."""
    if first_index == 0:
        return
    article = plan.doc[first_index - 1]
    if article.lower_ in ("a", "an"):
        new = grammar.match_case(article.text, grammar.article_for(next_word))
        if new != article.text:
            plan.ops.append(Replacement(article.idx, end_of(article), new, "article"))


def fix_relation(plan: Plan, claim: Claim) -> None:
    """Write the relation observed, or remove the relation phrase."""
    observed = claim.evidence.get("relation") if isinstance(claim.evidence, dict) else None
    if seen_count(claim) == 0 and _absent_object_removed(plan, claim):
        return  # no such subject or target: removing that object removes the relation with it
    target = plan.head_of(claim)
    if target is None:
        return
    found = relation_phrase(target)
    if found is None:
        return
    relation, first = found
    prep = target.head
    start, end = first.idx, end_of(prep)
    if observed in RELATIONS:
        if observed == relation:
            return
        new = grammar.match_case(plan.text[start:end], RELATIONS[observed])
        plan.ops.append(Replacement(start, end, new, f"relation: {relation} -> {observed}"))
        return
    top = first
    if top.dep_ in OPTIONAL_DEPS and not is_predicate(top):
        s, e = span_chars(top)
        plan.ops.append(Removal(s, e, f"relation not seen: {claim.text}"))
    else:
        remove_nodes(plan, [(top, f"relation not seen: {claim.text}")])


def _absent_object_removed(plan: Plan, claim: Claim) -> bool:
    """Whether the relation's subject or target, when the detector found none, is a mention
    this rewrite removes (a pronoun counts through its clause's removal)."""
    removed = [
        c for i, c in enumerate(plan.claims)
        if c.kind == "object" and i in plan.removed and claim.start <= c.start and c.end <= claim.end
    ]  # fmt: skip
    missing = claim.evidence.get("missing") if isinstance(claim.evidence, dict) else None
    wanted = claim.target if missing == "target" else claim.label
    if any(c.label == wanted for c in removed):
        return True
    return any(a <= claim.start and claim.end <= b for a, b in plan.removed_spans())
