"""MemVR: memory-space visual retracing (Zou et al., "Look Twice Before You Answer", ICML 2025, arXiv
2410.03577; reference: github.com/1zhou-Wang/MemVR, ``memvr.py`` at commit ebd2fcd).

In every forward (the prompt's, then each decoding step's) the newest position is read after each
watched decoder block ``l`` through the final norm and the LM head (an early exit), and the entropy
of the top ``K = 10`` exit logits, normalised by ``log K``, measures the model's uncertainty
(``memvr.py`` L206-215)::

    p = softmax(topk(logits_l, 10)),   H_l = -sum(p log p) / log 10   in [0, 1]

At the first watched block where ``H_l > entropy_threshold`` the image is "looked at again": the
FFN of block ``l + 1`` gets the visual tokens ``Z`` (``[N, d]``) as key-value memory, for that
forward only and for every position it computes (L224-245, L83-90)::

    A = (x Z^T) Z,   FFN'(x) = (1 - retracing_ratio) FFN(x) + retracing_ratio * (mean|FFN(x)| / mean|A|) A

with ``x`` the FFN's input (the block's normalised hidden states); the means run over the positions
of the forward and the hidden dimension. The reference also scales its two memory matrices by
``mean|W_up| / mean|Z|`` and ``mean|W_down| / mean|Z|`` (L244-245); those factors cancel in the
normalisation, so they are left out, and the memory read is computed in float32. Nothing sticks: the
next forward starts unretraced and decides again, so a decoded token's FFN is retraced at most once,
in the forward that computed it (the prompt's forward retraces every prompt position or none).

``Z`` are the image's input embeddings as the language model sees them (the projector's output:
``prepare_inputs_labels_for_multimodal`` hands ``cur_image_features`` to the layers), taken from the
call's own prompt forward at the image placeholders of the family's image block (wrapper tokens such
as Qwen's ``<|vision_start|>`` excluded). Every row (prompt, beam) has its own image, decision and
normalisation; the reference runs one prompt (its means and entropy span the whole batch).

Defaults are the reference's scripts (``scripts/llava/chair.sh`` L13-17, ``inference.py``:
``retracing_ratio=0.12, entropy_threshold=0.75, starting_layer=5, ending_layer=16``): blocks ``l``
with ``starting_layer < l < ending_layer`` are watched (6 to 15 of LLaVA-1.5's 32, so blocks 7 to 16
can be retraced); with ``None`` the same share of any model's depth is watched. The decision at
block ``l`` precedes block ``l + 1``, so it all happens in one pass (hooks, no second forward), as in
the reference. Its cost: one LM-head product per row and watched block until the row retraces (the
reference computes all 32 exits of every forward), plus the memory read in one block.
``retracing_ratio=0`` (or ``entropy_threshold >= 1``, above any normalised entropy) is exactly plain
``generate``.

>>> MemVR().layers(32), MemVR().layers(4), MemVR(starting_layer=0, ending_layer=3).layers(4)
(range(6, 16), range(1, 2), range(1, 3))
>>> MemVR(retracing_ratio=0).enabled, MemVR(entropy_threshold=1).enabled, MemVR().enabled
(False, False, True)
>>> round(float(top_entropy(torch.zeros(1, 32))[0]), 4)  # ten equal top logits: the most uncertain
1.0
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch

from .attention import expanded_rows
from .readout import TextStack

#: Top logits whose entropy decides (``torch.topk(logits, 10)``, normalised by ``np.log(10)``).
TOP_K = 10
#: The reference's watched blocks in LLaVA-1.5's 32: 6 to 15 (``starting_layer=5 < l < ending_layer=16``).
BAND = (6, 16, 32)


def top_entropy(logits: torch.Tensor) -> torch.Tensor:
    """The entropy of the softmax over each row's top ``TOP_K`` logits, over ``log TOP_K``, in [0, 1].

    A probability that underflows to 0 adds 0 (the reference's ``p * log(p)`` gives NaN there, which
    never exceeds the threshold)."""
    top = logits.float().topk(min(TOP_K, logits.shape[-1]), dim=-1).values
    p = torch.softmax(top, dim=-1)
    return (-torch.special.xlogy(p, p).sum(-1) / math.log(TOP_K)).clamp(0.0, 1.0)


class MemVR:
    """MemVR's parameters, with the reference's names and defaults, validated on construction."""

    name = "memvr"

    def __init__(
        self,
        retracing_ratio: float = 0.12,
        entropy_threshold: float = 0.75,
        starting_layer: int | None = None,
        ending_layer: int | None = None,
    ):
        if not _number(retracing_ratio) or not 0 <= retracing_ratio <= 1:
            raise ValueError(f"MemVR: retracing_ratio must be a number in [0, 1], got {retracing_ratio!r}")
        if not _number(entropy_threshold):
            raise ValueError(f"MemVR: entropy_threshold must be a finite number, got {entropy_threshold!r}")
        for label, value in (("starting_layer", starting_layer), ("ending_layer", ending_layer)):
            if value is not None and (type(value) is not int or value < 0):
                raise ValueError(f"MemVR: {label} must be None or an integer >= 0, got {value!r}")
        if starting_layer is not None and ending_layer is not None and ending_layer < starting_layer + 2:
            raise ValueError(
                f"MemVR watches the blocks strictly between starting_layer and ending_layer; "
                f"got {starting_layer} and {ending_layer}, none between them"
            )
        self.retracing_ratio, self.entropy_threshold = float(retracing_ratio), float(entropy_threshold)
        self.starting_layer, self.ending_layer = starting_layer, ending_layer

    @property
    def enabled(self) -> bool:
        return self.retracing_ratio > 0 and self.entropy_threshold < 1

    def layers(self, count: int) -> range:
        """The watched blocks of a model with ``count`` decoder blocks (block ``l + 1`` may be retraced)."""
        first = round(BAND[0] * count / BAND[2]) if self.starting_layer is None else self.starting_layer + 1
        stop = round(BAND[1] * count / BAND[2]) if self.ending_layer is None else self.ending_layer
        if self.starting_layer is None or self.ending_layer is None:
            stop = max(stop, first + 1)
        stop = min(stop, count - 1)
        return range(min(first, stop), stop)

    def intervention(self, target, family, model, inputs: dict, config):
        """The retracing installed on ``target`` for one ``generate`` call (``guarded._in_loop``)."""
        expand = expanded_rows(config)
        ids = inputs["input_ids"]
        block = family.image_block(model, ids)
        token = getattr(model.config, "image_token_id", None)
        columns = block if token is None else block & (ids == int(token))
        mask = inputs.get("attention_mask")
        seen = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.bool()
        return retracing(
            target, self, columns.repeat_interleave(expand, 0), seen.repeat_interleave(expand, 0)
        )


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Retracing:
    """One call's state: the visual memory of each row (from the prompt's forward) and, per forward,
    the rows still undecided and the rows to retrace at each block.

    ``columns``: bool ``(rows, width)``, each row's visual tokens in the prompt; ``seen``: its real
    (not padding) columns.
    """

    def __init__(self, method: MemVR, stack: TextStack, columns: torch.Tensor, seen: torch.Tensor):
        self.method, self.stack = method, stack
        self.columns, self.seen = columns, seen
        self.memory: torch.Tensor | None = None  # (rows, N, d) float32, zero-padded
        self.visual = columns.any(-1)  # rows with an image
        self.any_visual = bool(self.visual.any())
        self.real: torch.Tensor | None = None  # (rows, positions, 1) of this forward, None: all
        self.undecided = self.visual
        self.watching = False
        self.pending: dict[int, torch.Tensor] = {}

    def start(self, module, args, kwargs):
        """Block 0's pre-hook: a new forward; the prompt's gives the visual memory."""
        hidden = args[0] if args else kwargs["hidden_states"]
        rows, width = self.columns.shape
        if self.memory is None:
            if hidden.shape[0] != rows or hidden.shape[1] != width:
                from .guarded import GuardError

                raise GuardError(
                    f"MemVR: the prompt's forward has {hidden.shape[0]} rows of {hidden.shape[1]} positions, "
                    f"not the prompt's {rows} of {width}"
                )
            count = int(self.columns.sum(-1).max())
            memory = hidden.new_zeros(rows, count, hidden.shape[-1], dtype=torch.float32)
            columns = self.columns.to(hidden.device)
            for row in range(rows):
                tokens = hidden[row, columns[row]]
                memory[row, : tokens.shape[0]] = tokens.float()
            self.memory = memory
            self.real = self.seen[:, :, None]
        else:
            if hidden.shape[0] != rows:
                from .guarded import GuardError

                raise GuardError(f"MemVR: a forward of {hidden.shape[0]} rows in a call of {rows}")
            self.real = None
        self.undecided, self.watching, self.pending = self.visual.to(hidden.device), self.any_visual, {}

    def watch(self, index: int):
        """Block ``index``'s hook: the rows uncertain here (and undecided) are retraced in the next block."""

        def hook(module, args, output):
            if not self.watching:
                return
            hidden = output[0] if isinstance(output, tuple) else output
            logits = self.stack.exit_logits(hidden[:, -1], norm=True)
            uncertain = top_entropy(logits).to(self.undecided.device) > self.method.entropy_threshold
            fire = self.undecided & uncertain
            self.undecided = self.undecided & ~fire
            fired, self.watching = torch.stack([fire.any(), self.undecided.any()]).tolist()
            if fired:
                self.pending[index + 1] = fire

        return hook

    def retrace(self, index: int):
        """Block ``index``'s FFN hook: the visual memory read into the chosen rows' output."""

        def hook(module, args, kwargs, output):
            fire = self.pending.pop(index, None)
            if fire is None:
                return None
            x = (args[0] if args else next(iter(kwargs.values()))).float()
            memory = self.memory.to(x.device)
            read = torch.matmul(torch.matmul(x, memory.transpose(1, 2)), memory)
            ffn, real = output.float(), self.real
            real = torch.ones_like(ffn[..., :1], dtype=torch.bool) if real is None else real.to(x.device)
            scale = (ffn.abs() * real).sum((1, 2)) / (read.abs() * real).sum((1, 2))
            scale = torch.nan_to_num(scale, nan=0.0, posinf=0.0)[:, None, None]
            ratio = self.method.retracing_ratio
            mixed = (ffn * (1 - ratio) + scale * read * ratio).to(output.dtype)
            return torch.where(fire.to(x.device)[:, None, None] & real, mixed, output)

        return hook


def _ffn(block, index: int):
    ffn = getattr(block, "mlp", None)
    if not isinstance(ffn, torch.nn.Module):
        raise TypeError(f"MemVR: decoder block {index} ({type(block).__name__}) has no FFN module `mlp`")
    return ffn


@contextmanager
def retracing(target, method: MemVR, columns: torch.Tensor, seen: torch.Tensor):
    """Within the block, ``target``'s forwards retrace the image as ``method`` says (see the module)."""
    stack = TextStack.of(target)
    watched = method.layers(stack.n_layers)
    if not watched:
        raise ValueError(
            f"MemVR: no decoder block to watch between starting_layer={method.starting_layer} and "
            f"ending_layer={method.ending_layer} with a retraceable block after it; this language model has "
            f"{stack.n_layers} blocks (0..{stack.n_layers - 1})"
        )
    ffns = {index + 1: _ffn(stack.blocks[index + 1], index + 1) for index in watched}
    state = Retracing(method, stack, columns, seen)
    handles = [stack.blocks[0].register_forward_pre_hook(state.start, with_kwargs=True)]
    try:
        handles += [stack.blocks[index].register_forward_hook(state.watch(index)) for index in watched]
        handles += [ffn.register_forward_hook(state.retrace(i), with_kwargs=True) for i, ffn in ffns.items()]
        yield watched
    finally:
        for handle in handles:
            handle.remove()
