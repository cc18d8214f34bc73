"""ICD: Instruction Contrastive Decoding (Wang et al., Findings of ACL 2024).

The same contrast as VCD, but the second branch keeps the image and prefixes the instruction with
a disturbing role, so that the contrast removes what the model would say when it is told to be
unsure about the image::

    p_icd = softmax[(1 + alpha) * l(v, x) - alpha * l(v, role + x)]   on tokens with p(v, x) >= beta * max p

Source: github.com/p1k0pan/ICD (``icd_utils/icd_sample.py``; the roles are listed in
``experiments/gen_scripts/icd_llava_pope.py``, where the role replaces LLaVA's system prompt) and
MitigV's ``algorithms/icd.py``, which inserts it after the image placeholder, as we do. Defaults:
``alpha=1``, ``beta=0.1``, ``instruction="You are a confused object detector."`` (the reference's
longer role "You are a confused objects detector to provide a fuzzy overview or impression of the
image." can be passed as ``instruction``).

The instruction is tokenized with ``tokenizer`` (a tokenizer, or the model's processor; for
InstructBLIP pass the processor so that the Q-Former's copy of the instruction is prefixed too)
and inserted right after the image block of every row.

Example::

    icd = ICDLogitsProcessor(model, inputs, tokenizer=processor)
    out = model.generate(**inputs, logits_processor=[icd], max_new_tokens=64)
"""

from __future__ import annotations

from .contrast import PlainContrast

DEFAULT_INSTRUCTION = "You are a confused object detector."


class ICDLogitsProcessor(PlainContrast):
    """ICD as a ``transformers.LogitsProcessor``.

    Args:
        model, inputs: as for ``VCDLogitsProcessor``.
        tokenizer: the tokenizer (or processor) that made ``inputs``; required.
        alpha, beta: as for VCD.
        instruction: the disturbing role put before the instruction.
    """

    name = "icd"

    def __init__(
        self,
        model=None,
        inputs=None,
        *,
        tokenizer=None,
        alpha: float = 1.0,
        beta: float = 0.1,
        instruction: str = DEFAULT_INSTRUCTION,
        branch=None,
        renormalize: bool = False,
    ):
        self._set_strength(alpha, beta)
        if tokenizer is None:
            raise TypeError(
                "ICD needs the tokenizer to write its disturbing instruction: pass tokenizer=processor "
                "(e.g. guard(model, 'icd', tokenizer=processor))"
            )
        if not instruction.strip():
            raise ValueError("instruction must not be empty")
        self.instruction, self.tokenizer = instruction, tokenizer
        super().__init__(model, inputs, branch=branch, renormalize=renormalize)

    def distort(self, family, model, inputs: dict) -> dict:
        return family.add_instruction(model, inputs, self.instruction, self.tokenizer)
