"""Stage 4 with a language model: any transformers causal LM rewrites the answer from the verdicts.

:class:`LLMRewriter` has the signature of :func:`~halluguard.correctors.rewrite.rewrite`, so the
pipeline can use either. The model gets the answer and one line per checked claim ("cat": not in
the image, remove it; "three people": there are 2; ...) and writes the corrected answer, greedily
(deterministic for a given model). Its output is then validated against the verdicts:

- it is not empty and not much longer than the answer;
- every object that is kept (supported, or unverifiable and not to be removed) is still named;
- no contradicted object is named any more (unless it is also supported elsewhere).

An output that fails is replaced by the rule-based rewrite (``fallbacks`` counts how often, and
``last_reason`` says why). Edits are computed as a word-level diff against the original, so they
carry offsets into the original text like the rule rewriter's.

>>> rewriter = LLMRewriter("path/to/a/causal-lm")      # doctest: +SKIP
>>> corrected, edits = rewriter(text, claims)          # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from halluguard.records import Claim, Edit

__all__ = ["LLMRewriter", "build_prompt", "diff_edits"]

INSTRUCTION = (
    "You correct descriptions of images. Rewrite the description so that it only says what the image "
    "shows, changing as little as possible: remove what is marked as not in the image, fix what is "
    "marked as wrong, and keep every other sentence and object."
)


class LLMRewriter:
    """Rewrite answers with a transformers causal LM, validated, with the rule rewriter as fallback.

    ``model`` is a path or hub id (or an already loaded model, with ``tokenizer``). Loading honours
    ``HF_HUB_OFFLINE``; nothing is downloaded unless you name a hub id and are online.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any = None,
        *,
        device: str | None = None,
        max_new_tokens: int | None = None,
        vocabulary: Any = None,
        nlp: Any = None,
    ):
        self.model, self.tokenizer = _load(model, tokenizer, device)
        self.max_new_tokens = max_new_tokens
        self.vocabulary = vocabulary
        self.nlp = nlp
        self.calls = 0
        self.fallbacks = 0
        self.last_output: str | None = None
        self.last_reason: str | None = None

    def __call__(
        self,
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
        from halluguard.correctors.rewrite import rewrite, targets

        options = {
            "grounding": grounding, "unverifiable": unverifiable, "suspicion_threshold": suspicion_threshold,
            "suspicious": suspicious, "remove": list(remove), "hedge": list(hedge), "doc": doc,
            "nlp": nlp if nlp is not None else self.nlp,
        }  # fmt: skip
        rule_text, rule_edits = rewrite(text, claims, **options)
        if not rule_edits or all(e.reason.startswith("grounding") for e in rule_edits):
            return rule_text, rule_edits  # nothing for the model to fix
        dropped, _ = targets(
            claims, unverifiable=unverifiable, suspicion_threshold=suspicion_threshold, suspicious=suspicious,
            remove=options["remove"], hedge=options["hedge"],
        )
        output = self.generate(build_prompt(text, claims, dropped))
        self.calls += 1
        self.last_output = output
        problem = self.validate(text, output, claims, dropped)
        if problem is not None:
            self.fallbacks += 1
            self.last_reason = problem
            return rule_text, rule_edits
        self.last_reason = None
        if grounding:
            output = self._ground(output, claims)
        return output, diff_edits(text, output, "llm rewrite")

    # ------------------------------------------------------------------ model

    def prompt_text(self, prompt: str) -> str:
        """The prompt as the model sees it (through its chat template when it has one)."""
        template = getattr(self.tokenizer, "chat_template", None)
        if template:
            messages = [{"role": "user", "content": prompt}]
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return prompt

    def generate(self, prompt: str) -> str:
        """Greedy continuation of ``prompt``, cut at the first blank line."""
        import torch

        encoded = self.tokenizer(self.prompt_text(prompt), return_tensors="pt")
        encoded = {k: v.to(self.model.device) for k, v in encoded.items()}
        length = encoded["input_ids"].shape[1]
        budget = self.max_new_tokens or max(
            32, int(1.5 * len(prompt.split("Description:", 1)[-1].split())) + 32
        )
        pad = (
            self.tokenizer.pad_token_id
            if self.tokenizer.pad_token_id is not None
            else self.tokenizer.eos_token_id
        )
        with torch.no_grad():
            out = self.model.generate(**encoded, max_new_tokens=budget, do_sample=False, pad_token_id=pad)
        new = self.tokenizer.decode(out[0][length:], skip_special_tokens=True)
        return _clean(new)

    # ------------------------------------------------------------------ checks

    def validate(self, original: str, output: str, claims: Sequence[Claim], dropped: set[int]) -> str | None:
        """``None`` when ``output`` respects the verdicts, else what is wrong with it."""
        from halluguard.correctors.claims import extract_claims

        if not output.strip():
            return "empty output"
        if len(output.split()) > 1.5 * len(original.split()) + 20:
            return "output much longer than the answer"
        found = {
            c.label for c in extract_claims([output], self.vocabulary, self.nlp)[0] if c.kind == "object"
        }
        kept = {
            c.label for i, c in enumerate(claims)
            if c.kind == "object" and c.verdict != "contradicted" and i not in dropped
        }  # fmt: skip
        missing = sorted(kept - found)
        if missing:
            return "dropped supported object(s): " + ", ".join(missing)
        wrong = {c.label for c in claims if c.kind == "object" and c.verdict == "contradicted"} - kept
        wrong |= {c.label for i, c in enumerate(claims) if i in dropped} - kept
        still = sorted(wrong & found)
        if still:
            return "still names object(s) not in the image: " + ", ".join(still)
        return None

    def _ground(self, output: str, claims: Sequence[Claim]) -> str:
        from halluguard.correctors.claims import extract_claims
        from halluguard.correctors.rewrite import rewrite

        evidence = {c.label: c.evidence for c in claims if c.kind == "object" and c.verdict == "supported"}
        new_claims = extract_claims([output], self.vocabulary, self.nlp)[0]
        for claim in new_claims:
            if claim.kind == "object" and claim.label in evidence:
                claim.verdict, claim.evidence = "supported", dict(evidence[claim.label])
        return rewrite(output, new_claims, grounding=True, nlp=self.nlp)[0]


def build_prompt(text: str, claims: Sequence[Claim], dropped: set[int] = frozenset()) -> str:  # type: ignore[assignment]
    """The instruction, the answer and one line per checked claim."""
    lines = []
    for i, claim in enumerate(claims):
        line = _fact(claim, i in dropped)
        if line and line not in lines:
            lines.append(line)
    facts = "\n".join(lines) if lines else "- nothing could be checked"
    return f"{INSTRUCTION}\n\nDescription: {text}\n\nChecked against the image:\n{facts}\n\nCorrected description:"


def _fact(claim: Claim, dropped: bool) -> str | None:
    quoted = f'"{claim.text}"'
    evidence = claim.evidence if isinstance(claim.evidence, dict) else {}
    if dropped:
        return f"- {quoted}: probably not in the image, remove it"
    if claim.verdict == "supported":
        return f"- {quoted}: correct" if claim.kind == "object" else None
    if claim.verdict == "unverifiable":
        return None
    if claim.kind == "object" or evidence.get("count") == 0:
        return f"- {quoted}: NOT in the image, remove it"
    if claim.kind == "count" and evidence.get("count") is not None:
        return f"- {quoted}: wrong number, there are {evidence['count']}"
    if claim.kind == "attribute":
        seen = evidence.get("attribute")
        return f"- {quoted}: wrong colour" + (f", it is {seen}" if seen else ", remove the colour")
    if claim.kind == "relation":
        seen = evidence.get("relation")
        return f"- {quoted}: wrong position" + (f", it is {seen} the {claim.target}" if seen else "")
    return f"- {quoted}: wrong"


def _clean(generated: str) -> str:
    text = generated.strip()
    for stop in ("\n\n", "Description:", "Checked against the image:"):
        cut = text.find(stop)
        if cut > 0:
            text = text[:cut]
    return text.strip()


_PIECES = re.compile(r"\s+|[^\s]+")


def diff_edits(original: str, new: str, reason: str) -> list[Edit]:
    """Word-level edits (offsets into ``original``) that turn ``original`` into ``new``.

    >>> [(e.before, e.after) for e in diff_edits("A dog and a cat.", "A dog.", "x")]
    [('dog and a cat.', 'dog.')]
    """
    a = [m.group() for m in _PIECES.finditer(original)]
    b = [m.group() for m in _PIECES.finditer(new)]
    offsets = [0]
    for piece in a:
        offsets.append(offsets[-1] + len(piece))
    edits = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        start, end = offsets[i1], offsets[i2]
        edits.append(Edit(start, end, original[start:end], "".join(b[j1:j2]), reason))
    return _join_punctuation(original, edits)


def _join_punctuation(original: str, edits: list[Edit]) -> list[Edit]:
    """Merge edits separated only by whitespace into one (readable diffs)."""
    out: list[Edit] = []
    for edit in edits:
        if out and not original[out[-1].end : edit.start].strip():
            last = out[-1]
            gap = original[last.end : edit.start]
            out[-1] = Edit(
                last.start,
                edit.end,
                original[last.start : edit.end],
                last.after + gap + edit.after,
                last.reason,
            )
        else:
            out.append(edit)
    return out


def _load(model: Any, tokenizer: Any, device: str | None) -> tuple[Any, Any]:
    if not isinstance(model, str):
        if tokenizer is None:
            raise ValueError("LLMRewriter: pass the tokenizer along with a loaded model")
        return model, tokenizer
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as error:
        raise ImportError(
            "the LLM rewriter needs transformers and torch: pip install 'halluguard-vlm[decoders]'"
        ) from error
    try:
        tok = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(model)
        lm = AutoModelForCausalLM.from_pretrained(model)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"could not load the rewriter model {model!r}: {error}. Pass a local folder with a causal LM "
            "and its tokenizer, or a hub id while online (HF_HUB_OFFLINE unset)."
        ) from error
    if device is not None:
        lm = lm.to(device)
    lm.eval()
    return lm, tok
