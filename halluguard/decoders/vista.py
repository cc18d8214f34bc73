"""VISTA: visual information steering with token-logit augmentation (Li et al., ICML 2025).

"The Hidden Life of Tokens: Reducing Hallucination of Large Vision-Language Models via Visual
Information Steering" (arXiv 2502.03628), github.com/LzVv123456/VISTA. Two parts, each with its own
switch, in ``generate``'s own loop:

**Visual steering vector** (``vsv``, strength ``vsv_lambda``; ``steering_vector.py``,
``llm_layers.py``). Before decoding, two forwards of the prompt, unsteered: with the image and
without it (the image block and image tensors dropped, as the reference's ``prepare_null_prompt``;
the same no-image prompt as VDD). Each decoder block's output at the prompt's last position gives
one ``[blocks, hidden]`` matrix per prompt (``ForwardTracer``'s block hooks, no embedding layer);
the vector is the reference's rank-1 PCA (``obtain_vsv``: ``components_ + mean_``) of the single
difference ``with - without``. One difference centred is zero, so that PCA's component is the first
right singular vector LAPACK returns for a zero row, ``e_1``: the vector is the difference plus
``1`` on the first coordinate of block 0's row (computed here the same way, on the CPU in float32).
While decoding, the output ``x`` of the MLP of every block ``l`` (``layer.mlp`` wrapped by
``VSVLayer``), at every position (prompt and generated tokens), becomes::

    y  = vsv_lambda * (1 + max(0, cos(x, -v_l))) * v_l / |v_l|
    x' = normalize(normalize(x) + y) * |x|

in float32, cast back to the model's dtype. Each prompt of a batch gets its own vector (the
reference runs one prompt at a time), shared by its beams and returned sequences.

**Self-logits augmentation** (``logits_aug``, weight ``logits_alpha``; the reference's
``llava_llama.py`` forward). The next-token logits become::

    (1 - logits_alpha) * logits + logits_alpha * mean_{b in window} lm_head(h_b)

where ``h_b`` is block ``b``'s output (the steered residual stream), read through the LM head
without the final norm (``outputs.hidden_states[1:][b]``). That is the early exit of layer ``b + 1``
of ``readout.py``; block ``N - 1``'s entry of that tuple is the normed final state, so there it is
the final logits. ``logits_layers`` is the window ``(first, last)``, both included (the reference's
``"25,30"``, also accepted as that string).

Defaults: the reference's CHAIR scripts and ``chair_eval.py`` (``--vsv --vsv-lambda 0.1
--logits-aug --logits-alpha 0.3``, ``--logits_layers 25,30`` of LLaVA-1.5's 32 blocks, VSV on every
block); ``run_pope.sh`` uses ``vsv_lambda=0.01``. On other depths ``logits_layers=None`` takes the
same share, ``round(25 N / 32)`` to ``round(30 N / 32)``, kept below the last block (the reference's
"penultimate" window). ``vsv_layers=(start, end)`` steers only ``blocks[start:end]`` (``--layers``).
``vsv=False`` or ``vsv_lambda=0`` turns the steering off (no extra forwards),
``logits_aug=False`` or ``logits_alpha=0`` the augmentation; both off is exactly plain ``generate``.

>>> VISTA().window(32), VISTA().window(4), VISTA(logits_layers="1,2").window(4)
([25, 26, 27, 28, 29, 30], [2], [1, 2])
>>> VISTA(vsv_lambda=0, logits_aug=False).enabled
False
"""

from __future__ import annotations

import math
from contextlib import ExitStack, contextmanager

import torch
import torch.nn.functional as F

from . import compat
from .attention import expanded_rows
from .branch import prepare
from .readout import ReadoutMethod, TextStack, readout

#: The reference's SLA window in LLaVA-1.5's 32 blocks: 25 to 30, both included.
WINDOW = (25, 30, 32)


def _pair(label: str, value) -> tuple[int, int] | None:
    """``None``, ``(a, b)`` / ``[a, b]`` or the reference's ``"a,b"``, as two block indices."""
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else value
    pair: list = []
    if isinstance(parts, (list, tuple)):
        try:
            pair = [int(p) if isinstance(p, str) else p for p in parts]
        except ValueError:  # "a,b" with a part that is no integer
            pair = []
    if len(pair) != 2 or not all(type(p) is int and p >= 0 for p in pair):
        raise ValueError(
            f"VISTA: {label} must be None or two block indices >= 0, (a, b) or 'a,b'; got {value!r}"
        )
    return pair[0], pair[1]


class VISTA:
    """VISTA's parameters, with the reference's names and defaults, validated on construction."""

    name = "vista"

    def __init__(
        self,
        vsv: bool = True,
        vsv_lambda: float = 0.1,
        vsv_layers: tuple[int, int] | str | None = None,
        logits_aug: bool = True,
        logits_alpha: float = 0.3,
        logits_layers: tuple[int, int] | str | None = None,
    ):
        for label, value in (("vsv", vsv), ("logits_aug", logits_aug)):
            if not isinstance(value, bool):
                raise ValueError(f"VISTA: {label} must be True or False, got {value!r}")
        for label, value in (("vsv_lambda", vsv_lambda), ("logits_alpha", logits_alpha)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"VISTA: {label} must be a finite number, got {value!r}")
        self.vsv, self.logits_aug = vsv, logits_aug
        self.vsv_lambda, self.logits_alpha = float(vsv_lambda), float(logits_alpha)
        self.vsv_layers = _pair("vsv_layers", vsv_layers)
        if self.vsv_layers is not None and self.vsv_layers[1] <= self.vsv_layers[0]:
            raise ValueError(f"VISTA: vsv_layers needs start < end, got {vsv_layers!r}")
        self.logits_layers = _pair("logits_layers", logits_layers)
        if self.logits_layers is not None and self.logits_layers[1] < self.logits_layers[0]:
            raise ValueError(f"VISTA: logits_layers needs first <= last, got {logits_layers!r}")

    @property
    def steers(self) -> bool:
        """Whether the visual steering vector is applied."""
        return self.vsv and self.vsv_lambda != 0

    @property
    def augments(self) -> bool:
        """Whether the self-logits augmentation is applied."""
        return self.logits_aug and self.logits_alpha != 0

    @property
    def enabled(self) -> bool:
        return self.steers or self.augments

    def window(self, count: int) -> list[int]:
        """The blocks whose outputs the augmentation averages, in a model of ``count`` blocks."""
        if self.logits_layers is None:
            last = min(round(WINDOW[1] * count / WINDOW[2]), count - 2)
            first = min(round(WINDOW[0] * count / WINDOW[2]), last)
            return list(range(max(first, 0), max(last, 0) + 1))
        first, last = self.logits_layers
        if last >= count:
            raise ValueError(
                f"VISTA: logits_layers {self.logits_layers} out of range; this language model has {count} "
                f"blocks, so blocks 0..{count - 1}"
            )
        return list(range(first, last + 1))

    def steered_blocks(self, count: int) -> range:
        """The blocks whose MLP output is steered, in a model of ``count`` blocks."""
        if self.vsv_layers is None:
            return range(count)
        start, end = self.vsv_layers
        if start >= count:
            raise ValueError(
                f"VISTA: vsv_layers {self.vsv_layers} steers no block; this language model has {count} blocks"
            )
        return range(start, min(end, count))

    @contextmanager
    def intervention(self, target, family, model, inputs: dict, config):
        """VISTA installed on ``target`` for one ``generate`` call (``guarded._in_loop``)."""
        stack = TextStack.of(target)
        blocks = self.steered_blocks(stack.n_layers) if self.steers else None  # checked before any forward
        window = self.window(stack.n_layers) if self.augments else None
        with ExitStack() as installed:
            if blocks is not None:
                vectors = steering_vectors(target, family, model, inputs, stack)
                vectors = vectors.repeat_interleave(expanded_rows(config), dim=0)
                installed.enter_context(steering(stack, vectors, self.vsv_lambda, blocks))
            if window is not None:
                augmentation = SelfLogits(window, stack.n_layers, self.logits_alpha)
                installed.enter_context(readout(target, augmentation))
            yield


class SelfLogits(ReadoutMethod):
    """The self-logits augmentation of one call: ``window`` (block indices) of ``count`` blocks."""

    name = "vista"
    norm = False

    def __init__(self, window: list[int], count: int, alpha: float):
        self.window, self.count, self.alpha = window, count, alpha

    def layers(self, n_layers: int, tied: bool) -> list[int]:
        # block b's output is the input of block b + 1; the last block's is the final state
        return [block + 1 for block in self.window if block + 1 < n_layers]

    def correct(self, final: torch.Tensor, exits: dict[int, torch.Tensor]) -> torch.Tensor:
        early = [exits[block + 1] if block + 1 < self.count else final for block in self.window]
        augmented = torch.stack(early).mean(0)
        return self.alpha * augmented + (1 - self.alpha) * final


def last_hidden(target, inputs: dict, stack: TextStack) -> torch.Tensor:
    """Each block's output at the last position of ``inputs``' prompt (``[rows, blocks, hidden]``, float32),
    from one unsteered forward prepared as ``generate`` prepares its prompt."""
    outputs: dict[int, torch.Tensor] = {}

    def keep(index):
        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            outputs[index] = hidden[:, -1].float()

        return hook

    handles = [block.register_forward_hook(keep(i)) for i, block in enumerate(stack.blocks)]
    try:
        with compat.preserved_state(target):
            state = prepare(target, inputs)
            step = compat.step_inputs(target, state.input_ids, state.model_kwargs, first=True)
            target(**step, return_dict=True)
    finally:
        for handle in handles:
            handle.remove()
    if len(outputs) != stack.n_layers:
        raise RuntimeError(
            f"VISTA: the forward of {type(target).__name__} did not run through its {stack.n_layers} decoder "
            "blocks; the steering vector cannot be computed"
        )
    return torch.stack([outputs[i] for i in range(stack.n_layers)], dim=1)


def reference_direction(difference: torch.Tensor) -> torch.Tensor:
    """``obtain_vsv`` of one prompt: ``PCA(n_components=1)`` fitted on the flattened difference alone,
    ``components_.sum(0) + mean_``, in float32 on the CPU (the reference's ``myutils.PCA``, ``svd_flip``).

    >>> reference_direction(torch.tensor([[2.0, 3.0], [4.0, 5.0]])).tolist()
    [[3.0, 3.0], [4.0, 5.0]]
    """
    data = difference.reshape(1, -1).float().cpu()
    mean = data.mean(0, keepdim=True)
    u, _, vh = torch.linalg.svd(data - mean, full_matrices=False)
    signs = torch.sign(u[u.abs().argmax(0), torch.arange(u.shape[1])])  # svd_flip
    component = vh[:1] * signs[:1, None]
    return (component.sum(0, keepdim=True) + mean).mean(0).view_as(difference).to(difference.device)


def steering_vectors(target, family, model, inputs: dict, stack: TextStack) -> torch.Tensor:
    """Each prompt's visual steering vector, ``[rows, blocks, hidden]`` in float32 (see the module)."""
    _, positive = family.to_target(model, inputs)
    _, negative = family.to_target(model, family.drop_image(model, inputs))
    difference = last_hidden(target, positive, stack) - last_hidden(target, negative, stack)
    return torch.stack([reference_direction(row) for row in difference])


def steer(x: torch.Tensor, vectors: torch.Tensor, strength: float) -> torch.Tensor:
    """``VSVLayer.forward`` on an MLP output ``x`` (``[rows, positions, hidden]``) with one vector per row."""
    hidden = x.float()
    norm = torch.norm(hidden, p=2, dim=-1, keepdim=True)
    vectors = vectors[:, None, :].to(hidden.device)
    similarity = 1.0 + F.cosine_similarity(hidden, -vectors, dim=-1).clamp_min(0.0)[..., None]
    shift = strength * similarity * F.normalize(vectors, dim=-1)
    return (F.normalize(F.normalize(hidden, p=2, dim=-1) + shift, p=2, dim=-1) * norm).to(x.dtype)


@contextmanager
def steering(stack: TextStack, vectors: torch.Tensor, strength: float, blocks: range):
    """Within the block, the MLP output of each of ``blocks`` is steered by its row of ``vectors``."""

    def hook(index):
        def steered(module, args, output):
            if output.shape[0] != vectors.shape[0]:
                from .guarded import GuardError

                raise GuardError(
                    f"VISTA: a forward of {output.shape[0]} rows in a call whose prompts expand to "
                    f"{vectors.shape[0]} rows; the steering vectors cannot follow it"
                )
            return steer(output, vectors[:, index], strength)

        return steered

    handles = []
    try:
        for index in blocks:
            mlp = getattr(stack.blocks[index], "mlp", None)
            if not isinstance(mlp, torch.nn.Module):
                raise TypeError(
                    f"VISTA: decoder block {index} ({type(stack.blocks[index]).__name__}) has no mlp to steer"
                )
            handles.append(mlp.register_forward_hook(hook(index)))
        yield
    finally:
        for handle in handles:
            handle.remove()
