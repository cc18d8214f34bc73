"""VCD: Visual Contrastive Decoding (Leng et al., CVPR 2024).

Contrast the next-token logits given the image with those given a diffusion-noised copy::

    p_vcd = softmax[(1 + alpha) * l(v, x) - alpha * l(v', x)]   on tokens with p(v, x) >= beta * max p(v, x)

``v'`` is the processor's pixel tensor after ``noise_step`` steps of DDPM forward noise
(``halluguard.decoders.distortions.diffusion_noise``). Defaults follow the reference code
(github.com/DAMO-NLP-SG/VCD, ``vcd_utils/vcd_sample.py`` and ``vcd_add_noise.py``): ``alpha=1``,
``beta=0.1``, ``noise_step=500``. The noise comes from ``torch.Generator(device).manual_seed(seed)``,
drawn once when the contrast inputs are built (once per guarded ``generate`` call).

Example, as a plain logits processor (``model``/``inputs`` from any supported family)::

    vcd = VCDLogitsProcessor(model, inputs, alpha=1.0, beta=0.1, noise_step=500, seed=0)
    out = model.generate(**inputs, logits_processor=[vcd], max_new_tokens=64)
"""

from __future__ import annotations

import torch

from .contrast import PlainContrast
from .distortions import noise_coefficients


class VCDLogitsProcessor(PlainContrast):
    """VCD as a ``transformers.LogitsProcessor`` (see the module docstring for the formula and source).

    Args:
        model: the vision-language model (a supported ``*ForConditionalGeneration``).
        inputs: the processor output you pass to ``generate`` (``input_ids``, ``pixel_values``, ...).
        alpha: contrast strength; ``0`` turns the method off.
        beta: adaptive plausibility cutoff, relative to the most likely token; ``0`` keeps all tokens.
        noise_step: diffusion step of the noised image, in ``[0, 999]``.
        seed: seed of the noise generator; ``None`` draws a fresh one.
    """

    name = "vcd"

    def __init__(
        self,
        model=None,
        inputs=None,
        *,
        alpha: float = 1.0,
        beta: float = 0.1,
        noise_step: int = 500,
        seed: int | None = None,
        branch=None,
        renormalize: bool = False,
    ):
        self._set_strength(alpha, beta)
        noise_coefficients(noise_step)  # checks the step
        self.noise_step, self.seed = int(noise_step), seed
        super().__init__(model, inputs, branch=branch, renormalize=renormalize)

    def generator_for(self, device) -> torch.Generator:
        generator = torch.Generator(device=device)
        if self.seed is None:
            generator.seed()
        else:
            generator.manual_seed(int(self.seed))
        return generator

    def distort(self, family, model, inputs: dict) -> dict:
        return family.noise(inputs, self.noise_step, self.generator_for)
