"""In-process mitigation, drop-in parts of ``generate``: VCD, ICD, VDD, M3ID, DoLa, DeCo, OPERA, PAI, VAF,
ONLY, MemVR, VISTA.

``guard(model, method, **params)`` wraps a vision-language model so that its ``generate`` applies
the method; each contrastive method is also a plain ``transformers.LogitsProcessor``:

- :class:`VCDLogitsProcessor`: contrast with a diffusion-noised image (Leng et al., CVPR 2024).
- :class:`ICDLogitsProcessor`: contrast with a disturbing instruction (Wang et al., ACL Findings 2024).
- :class:`VDDLogitsProcessor`: contrast with the prompt without the image (Zhang et al., 2024).
- :class:`M3IDLogitsProcessor`: amplify the image's information as it fades (Favero et al., CVPR 2024).

and two read the model's earlier layers through its LM head (``readout.py``), in ``generate``'s own loop:

- :class:`DoLa`: contrast with the premature layer that differs most (Chuang et al., ICLR 2024).
- :class:`DeCo`: correct with the preceding layer most confident in a candidate (Wang et al., ICLR 2025).

one replaces beam search (``opera.py``):

- :class:`OPERA`: penalise over-trust in summary tokens, roll back when it persists (Huang et al., CVPR 2024).

and two edit the attention inside the model (with ``attention.py``):

- :class:`PAILogitsProcessor`: amplify the newest token's attention to the image in a band of layers, plus
  image-free guidance (Liu et al., ECCV 2024).
- :class:`VAF`: scale the attention logits on the image up and on the system prompt down in middle layers
  (ClearSight, Yin et al., CVPR 2025).

and one intervenes in one block's heads for a second set of logits in the same forward (``only.py``):

- :class:`ONLY`: heads chosen by their text-to-visual entropy ratio give textually enhanced logits, fused
  with or contrasted against the final ones by how much the two agree (Wan et al., ICCV 2025).

and one re-reads the image from an FFN when the model is unsure (``memvr.py``):

- :class:`MemVR`: when an early exit's top-10 entropy is high, the image's tokens become key-value memory
  of a middle block's FFN (Zou et al., ICML 2025).

and one steers the residual stream and reads earlier layers (``vista.py``):

- :class:`VISTA`: steer every block's MLP output along a per-prompt visual steering vector (the residual
  stream with the image minus without it), and mix late layers' logits into the final ones (Li et al.,
  ICML 2025).

Supported families: LLaVA-1.5, LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL, Idefics3 (SmolVLM), PaliGemma,
InstructBLIP. The names below are imported on first use, so ``import halluguard.decoders.cli``
(the ``generate`` command) does not import torch.

>>> import halluguard.decoders as decoders
>>> sorted(decoders.METHODS)
['deco', 'dola', 'icd', 'm3id', 'memvr', 'none', 'only', 'opera', 'pai', 'vaf', 'vcd', 'vdd', 'vista']
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "guard": "guarded",
    "Guarded": "guarded",
    "GuardError": "guarded",
    "METHODS": "guarded",
    "EXECUTIONS": "guarded",
    "ContrastiveLogitsProcessor": "contrast",
    "VCDLogitsProcessor": "vcd",
    "ICDLogitsProcessor": "icd",
    "VDDLogitsProcessor": "vdd",
    "M3IDLogitsProcessor": "m3id",
    "DoLa": "dola",
    "DeCo": "deco",
    "OPERA": "opera",
    "PAILogitsProcessor": "pai",
    "VAF": "vaf",
    "ONLY": "only",
    "MemVR": "memvr",
    "VISTA": "vista",
    "diffusion_noise": "distortions",
    "family_of": "families",
    "supported_families": "families",
    "UnsupportedModelError": "families",
    "FallbackWarning": "fused",
    "CompatibilityError": "compat",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
