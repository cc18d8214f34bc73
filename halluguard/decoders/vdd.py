"""VDD: Visual Debias Decoding (Zhang et al., "Debiasing Multimodal Large Language Models", 2024).

The same contrast as VCD, with the prompt *without the image* as the second branch, so that the
contrast removes the language model's prior::

    p_vdd = softmax[(1 + alpha) * l(v, x) - alpha * l(x)]   on tokens with p(v, x) >= beta * max p

Source: github.com/yfzhang114/LLaVA-Align (the "image-free" contrast of its Visual Debias
Decoding). The no-image prompt drops the image placeholder tokens and their wrappers (Qwen's
``<|vision_start|>``/``<|vision_end|>``, Idefics3's ``<fake_token_around_image>``) and the image
tensors. Defaults: ``alpha=1``, ``beta=0.1``.

Example::

    vdd = VDDLogitsProcessor(model, inputs)
    out = model.generate(**inputs, logits_processor=[vdd], max_new_tokens=64)
"""

from __future__ import annotations

from .contrast import PlainContrast


class VDDLogitsProcessor(PlainContrast):
    """VDD as a ``transformers.LogitsProcessor``; ``alpha`` and ``beta`` as for VCD."""

    name = "vdd"

    def __init__(
        self,
        model=None,
        inputs=None,
        *,
        alpha: float = 1.0,
        beta: float = 0.1,
        branch=None,
        renormalize: bool = False,
    ):
        self._set_strength(alpha, beta)
        super().__init__(model, inputs, branch=branch, renormalize=renormalize)

    def distort(self, family, model, inputs: dict) -> dict:
        return family.drop_image(model, inputs)
