"""OPERA: over-trust penalty and retrospection-allocation in beam search (Huang et al., CVPR 2024).

``guard(model, "opera", ...)`` runs OPERA's beam search (``opera_search.py``; reference: shikiw/OPERA,
``transformers-4.29.2/src/transformers/generation/utils.py``, ``opera_beam_search``, L3116-L3674)
through ``generate``'s ``custom_generate`` hook. As in the reference, a batch is decoded prompt by
prompt (each without its padding, with its own beam search and rollbacks); the rows are stacked as
``generate`` stacks them, filled on the right as its beam search fills. ``num_beams=1`` (or unset)
is a width-1 beam search. The image mass is taken over ``Family.image_block``'s columns.

OPERA reads the last decoder layer's attention weights, which only eager attention returns. For the
call, that layer runs its family's eager function and every other layer its own kernel
(``attention.layer_attention``; restored after the call, also on error), and a forward hook on the
last layer's self-attention keeps the weights. Cost (``benchmarks/bench_opera.py``): about 1.3x plain
beam search per prompt.

>>> OPERA().enabled, OPERA(penalty_weights=0, retrospection=False).enabled
(True, False)
>>> OPERA(num_attn_candidates=1)
Traceback (most recent call last):
...
ValueError: OPERA: num_attn_candidates must be an integer >= 2 (the reference requires it), got 1
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager, nullcontext

import torch
from transformers.generation import GenerateBeamDecoderOnlyOutput

from . import compat
from .attention import as_eager, layer_attention
from .distortions import ROW_KEYS
from .families import family_of
from .opera_search import OperaPlan, SearchRecord, opera_beam_search, refuse
from .readout import TextStack

#: The smallest ``window_size`` with which a rollback can happen (its positions start at 11).
SHORT_WINDOW = 12


def _integer(value, low: int) -> bool:
    return type(value) is int and value >= low


class OPERA:
    """OPERA's parameters, with the reference's names and defaults, validated on construction;
    ``retrospection`` switches the rollback."""

    name = "opera"

    def __init__(
        self,
        scale_factor: float = 50.0,
        threshold: int = 15,
        num_attn_candidates: int = 5,
        penalty_weights: float = 1.0,
        window_size: int = 512,
        retrospection: bool = True,
    ):
        if not isinstance(scale_factor, (int, float)) or not 0 < scale_factor < math.inf:
            raise ValueError(f"OPERA: scale_factor must be a positive finite number, got {scale_factor!r}")
        if not _integer(threshold, 0):
            raise ValueError(f"OPERA: threshold must be an integer >= 0, got {threshold!r}")
        if not _integer(num_attn_candidates, 2):
            raise ValueError(
                "OPERA: num_attn_candidates must be an integer >= 2 (the reference requires it), "
                f"got {num_attn_candidates!r}"
            )
        if not isinstance(penalty_weights, (int, float)) or not math.isfinite(penalty_weights):
            raise ValueError(f"OPERA: penalty_weights must be a finite number, got {penalty_weights!r}")
        if not _integer(window_size, SHORT_WINDOW):
            raise ValueError(f"OPERA: window_size must be an integer >= {SHORT_WINDOW}, got {window_size!r}")
        if not isinstance(retrospection, bool):
            raise ValueError(f"OPERA: retrospection must be True or False, got {retrospection!r}")
        self.scale_factor, self.threshold = float(scale_factor), threshold
        self.num_attn_candidates, self.penalty_weights = num_attn_candidates, float(penalty_weights)
        self.window_size, self.retrospection = window_size, retrospection

    @property
    def enabled(self) -> bool:
        """False when neither the penalty nor the rollback can act: then the call is plain ``generate``."""
        return bool(self.penalty_weights) or self.retrospection


class AttentionCapture:
    """Forward hook on the last decoder layer's self-attention: its query rows, max over heads."""

    def __init__(self):
        self.rows: torch.Tensor | None = None  # [rows, queries, keys]

    def __call__(self, module, args, output):
        weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
        if not isinstance(weights, torch.Tensor) or weights.dim() != 4:
            refuse(
                "OPERA reads the last decoder layer's attention weights, and this model's attention returns "
                "none: it needs an attention built on transformers' AttentionInterface (load it with "
                "attn_implementation='eager' if its classes predate it)"
            )
        self.rows = weights.amax(dim=1)

    def normalized(self) -> torch.Tensor:
        """The newest query's row divided by its sum over all keys (``attn_last / attn_last.sum(-1)``)."""
        row = self.rows[:, -1]
        return row / row.sum(-1, keepdim=True)

    def candidate_rows(self) -> torch.Tensor:
        """After a lookahead of ``C`` candidates side by side (:func:`opera_search.lookahead`): each
        candidate's normalised row over the cached keys and its own, ``[rows, C, cached + 1]``."""
        count = self.rows.shape[1]
        cached = self.rows[..., : -count]
        own = self.rows[..., -count:].diagonal(dim1=1, dim2=2)[..., None]
        rows = torch.cat([cached, own], dim=-1)
        return rows / rows.sum(-1, keepdim=True)

    @contextmanager
    def installed(self, target):
        """The hook on ``target``'s last layer, and that layer in eager attention, for the block."""
        blocks = TextStack.of(target).blocks
        handle = blocks[-1].self_attn.register_forward_hook(self)
        try:
            last = as_eager(compat.eager_attention(blocks[-1].self_attn))
            with layer_attention(target, {len(blocks) - 1: last}):
                yield
        finally:
            handle.remove()


def one_prompt(model, inputs: dict, row: int) -> tuple[dict, int]:
    """Prompt ``row`` of a batch without its padding columns, and how many columns were dropped."""
    ids = inputs["input_ids"]
    batch, width = ids.shape
    mask = inputs.get("attention_mask")
    keep = torch.ones(width, dtype=torch.bool, device=ids.device) if mask is None else mask[row].bool()
    grid = inputs.get("image_grid_thw")
    out = {}
    for key, value in inputs.items():
        if key in ROW_KEYS and value is not None:
            out[key] = value[row : row + 1][:, keep]
        elif batch == 1 or not isinstance(value, torch.Tensor):
            out[key] = value
        elif grid is not None and key in ("pixel_values", "image_grid_thw"):
            continue
        elif value.shape[0] == batch:
            out[key] = value[row : row + 1]
        else:
            refuse(
                f"OPERA decodes a batch prompt by prompt and cannot tell which of the {value.shape[0]} "
                f"entries of {key} belong to prompt {row}: pass one prompt per call"
            )
    if grid is not None and batch > 1:  # Qwen: each image's flattened patches, images in prompt order
        start, image = model.config.vision_start_token_id, model.config.image_token_id
        images = ((ids[:, :-1] == start) & (ids[:, 1:] == image)).sum(1).tolist()
        first, patches = sum(images[:row]), grid.prod(-1).tolist()
        offset, count = sum(patches[:first]), sum(patches[first : first + images[row]])
        out["image_grid_thw"] = grid[first : first + images[row]]
        out["pixel_values"] = inputs["pixel_values"][offset : offset + count]
    return out, width - int(keep.sum())


def _lengths(config, gen_kwargs: dict, dropped: int) -> dict:
    """``gen_kwargs`` with absolute lengths moved by the dropped padding, so they mean what they meant."""
    out = dict(gen_kwargs)
    if dropped and config.max_new_tokens is None:
        out["max_length"] = compat.default_max_length(config) - dropped
    if dropped and config.min_length:
        out["min_length"] = max(int(config.min_length) - dropped, 0)
    return out


def opera_generate(model, method: OPERA, inputs: dict, gen_kwargs: dict, record: SearchRecord | None = None):
    """OPERA's beam search on each prompt of ``inputs``: what ``generate`` returns (see the module).
    ``record`` collects the rollbacks."""
    family, record = family_of(model), SearchRecord() if record is None else record
    if gen_kwargs.get("streamer") is not None:
        refuse("OPERA is a beam search, which does not stream (as transformers' beam search)")
    sequences, scores = [], []
    with torch.no_grad():
        for row in range(inputs["input_ids"].shape[0]):
            prompt, dropped = one_prompt(model, inputs, row)
            target, main = family.to_target(model, prompt)
            config = copy.deepcopy(gen_kwargs.get("generation_config") or target.generation_config)
            config.update(**{k: v for k, v in gen_kwargs.items() if k != "generation_config"})
            capture = AttentionCapture() if method.enabled else None  # (off: the loop reads nothing)
            plan = OperaPlan(method, family.image_block(model, prompt["input_ids"])[0], capture, record)
            record.prompt = row
            with nullcontext() if capture is None else capture.installed(target):
                output = target.generate(
                    **main,
                    **_lengths(config, gen_kwargs, dropped),
                    custom_generate=opera_beam_search,
                    halluguard_opera=plan,
                )
            generated = output.sequences[:, prompt["input_ids"].shape[1] :]
            sequences.append(torch.cat([inputs["input_ids"][row].expand(len(generated), -1), generated], 1))
            scores.append(output.sequences_scores)
    width = max(s.shape[1] for s in sequences)
    fill = record.fill_value
    stacked = torch.cat([torch.nn.functional.pad(s, (0, width - s.shape[1]), value=fill) for s in sequences])
    if not config.return_dict_in_generate:
        return stacked
    return GenerateBeamDecoderOnlyOutput(sequences=stacked, sequences_scores=torch.cat(scores))
