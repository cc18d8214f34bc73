"""The distortions that make the second (contrast) branch: noised pixels and edited token rows.

``diffusion_noise`` is VCD's distortion: the forward process of a DDPM with VCD's schedule
(DAMO-NLP-SG/VCD, ``vcd_utils/vcd_add_noise.py``), applied to the processor's pixel tensor::

    betas = sigmoid(linspace(-6, 6, 1000)) * (5e-3 - 1e-5) + 1e-5
    abar  = cumprod(1 - betas)
    x_T   = sqrt(abar[T]) * x + sqrt(1 - abar[T]) * eps,   eps ~ N(0, I)

The noise comes from an explicit ``torch.Generator``; the global RNG is never used.

>>> import torch
>>> x = torch.zeros(1, 3, 4, 4)
>>> g = torch.Generator().manual_seed(0)
>>> y = diffusion_noise(x, 500, g)
>>> y.shape, bool((y != 0).any())
(torch.Size([1, 3, 4, 4]), True)
>>> torch.equal(y, diffusion_noise(x, 500, torch.Generator().manual_seed(0)))
True
>>> [round(c, 3) for c in noise_coefficients(500)]  # (signal, noise) scales at VCD's default step
[0.863, 0.505]

``insert_columns`` and ``keep_columns`` edit left-padded token rows (ICD's extra instruction, the
no-image prompt of VDD and M3ID) and keep every row-aligned tensor (attention mask, token types)
in step, re-padding on the left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache

import torch

NUM_DIFFUSION_STEPS = 1000

#: Tensors that run along the token sequence, and the value a padding column gets in each.
ROW_KEYS: dict[str, int | None] = {
    "input_ids": None,  # the pad token id, given by the caller
    "attention_mask": 0,
    "token_type_ids": 0,
    "mm_token_type_ids": 0,
}


@cache
def noise_coefficients(step: int) -> tuple[float, float]:
    """``(sqrt(abar_T), sqrt(1 - abar_T))`` of VCD's schedule, computed in float32 as the reference does."""
    if not 0 <= int(step) < NUM_DIFFUSION_STEPS:
        raise ValueError(f"noise_step must be in [0, {NUM_DIFFUSION_STEPS - 1}], got {step}")
    betas = torch.sigmoid(torch.linspace(-6, 6, NUM_DIFFUSION_STEPS)) * (0.5e-2 - 1e-5) + 1e-5
    abar = torch.cumprod(1 - betas, dim=0)
    return float(torch.sqrt(abar[int(step)])), float(torch.sqrt(1 - abar[int(step)]))


def diffusion_noise(pixel_values: torch.Tensor, step: int, generator: torch.Generator) -> torch.Tensor:
    """Return ``pixel_values`` after ``step`` steps of VCD's forward diffusion (a new tensor).

    The Gaussian noise is drawn in float32 from ``generator`` (on ``pixel_values.device``) and the
    result is cast back to the input dtype. The operation is elementwise, so it applies to any
    layout of pixel tensor (LLaVA's images, LLaVA-NeXT's tiles, Qwen's flattened patches).
    """
    signal, noise_scale = noise_coefficients(step)
    noise = torch.randn(
        pixel_values.shape, generator=generator, device=pixel_values.device, dtype=torch.float32
    )
    noised = signal * pixel_values.float() + noise_scale * noise
    return noised.to(pixel_values.dtype)


def _pad_value(key: str, pad_token_id: int) -> int:
    value = ROW_KEYS.get(key, 0)
    return pad_token_id if value is None else value


def _attention(inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
    ids = inputs["input_ids"]
    mask = inputs.get("attention_mask")
    return torch.ones_like(ids) if mask is None else mask


def keep_columns(inputs: Mapping, keep: torch.Tensor, pad_token_id: int) -> dict:
    """Drop the token columns where ``keep`` is False, row by row, and left-pad the rows again.

    ``inputs`` holds ``input_ids`` and optionally the other row-aligned tensors of ``ROW_KEYS``;
    other entries are copied unchanged. Padding columns (attention 0) are always dropped first.

    >>> ids = torch.tensor([[0, 5, 9, 9, 6], [4, 5, 9, 9, 6]])
    >>> out = keep_columns({"input_ids": ids, "attention_mask": (ids != 0).long()}, ids != 9, pad_token_id=0)
    >>> out["input_ids"].tolist(), out["attention_mask"].tolist()
    ([[0, 5, 6], [4, 5, 6]], [[0, 1, 1], [1, 1, 1]])
    """
    attention = _attention(inputs).bool()
    keep = keep & attention
    rows = {key: inputs[key] for key in ROW_KEYS if inputs.get(key) is not None}
    rows.setdefault("attention_mask", attention.long())
    lengths = keep.sum(dim=1)
    width = int(lengths.max()) if lengths.numel() else 0
    out = dict(inputs)
    for key, tensor in rows.items():
        padded = torch.full(
            (tensor.shape[0], width), _pad_value(key, pad_token_id), dtype=tensor.dtype, device=tensor.device
        )
        for r in range(tensor.shape[0]):
            kept = tensor[r][keep[r]]
            if kept.numel():
                padded[r, width - kept.numel() :] = kept
        out[key] = padded
    return out


def insert_columns(
    inputs: Mapping,
    positions: Sequence[int],
    tokens: Sequence[int],
    pad_token_id: int,
    values: Mapping | None = None,
) -> dict:
    """Insert the same ``tokens`` into every row at ``positions[row]`` (an index into the row).

    The row-aligned tensors get ``values[key]`` (default: 1 for the attention mask, 0 for token
    types) in the new columns. Rows keep their left padding: each grows by ``len(tokens)``.

    >>> ids = torch.tensor([[0, 5, 6], [4, 5, 6]])
    >>> out = insert_columns({"input_ids": ids, "attention_mask": (ids != 0).long()}, [2, 2], [7, 8], 0)
    >>> out["input_ids"].tolist(), out["attention_mask"].tolist()
    ([[0, 5, 7, 8, 6], [4, 5, 7, 8, 6]], [[0, 1, 1, 1, 1], [1, 1, 1, 1, 1]])
    """
    values = {"attention_mask": 1, **(values or {})}
    rows = {key: inputs[key] for key in ROW_KEYS if inputs.get(key) is not None}
    rows.setdefault("attention_mask", _attention(inputs))
    out = dict(inputs)
    for key, tensor in rows.items():
        new = torch.tensor(
            list(tokens) if key == "input_ids" else [values.get(key, 0)] * len(tokens),
            dtype=tensor.dtype,
            device=tensor.device,
        )
        out[key] = torch.stack(
            [
                torch.cat([tensor[r, : positions[r]], new, tensor[r, positions[r] :]])
                for r in range(tensor.shape[0])
            ]
        )
    return out


def left_pad(inputs: Mapping, width: int, pad_token_id: int) -> dict:
    """Left-pad every row-aligned tensor of ``inputs`` to ``width`` columns (``inputs_embeds`` with zeros)."""
    out = dict(inputs)
    current = inputs["input_ids"].shape[1]
    extra = width - current
    if extra < 0:
        raise ValueError(f"cannot left-pad {current} columns to {width}")
    if out.get("attention_mask") is None:
        out["attention_mask"] = torch.ones_like(inputs["input_ids"])
    if extra == 0:
        return out
    for key in ROW_KEYS:
        tensor = out.get(key)
        if tensor is None:
            continue
        pad = torch.full(
            (tensor.shape[0], extra), _pad_value(key, pad_token_id), dtype=tensor.dtype, device=tensor.device
        )
        out[key] = torch.cat([pad, tensor], dim=1)
    embeds = out.get("inputs_embeds")
    if embeds is not None:
        zeros = embeds.new_zeros((embeds.shape[0], extra, embeds.shape[2]))
        out["inputs_embeds"] = torch.cat([zeros, embeds], dim=1)
    return out
