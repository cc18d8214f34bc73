"""ONLY: one-layer intervention (Wan et al., ICCV 2025, arXiv 2507.00898; github.com/zifuwan/ONLY).

One forward per step gives two sets of next-token logits: the model's own ``l``, and textually
enhanced ones ``l_te`` built from one block's attention, intervened, sent through the last block's
FFN half and the LM head. Their agreement chooses how they are combined. Per row and step, with the
newest token as the query (reference: the repository's ``transformers/src/transformers/models/llama/
modeling_llama.py``, ``LlamaAttention.forward``'s branch ``last_layer == 'get hidden states'``,
``LlamaDecoderLayer.forward``'s ``last_layer == 'last layer'``, ``LlamaModel.forward``'s ``idx ==
enhance_layer_index`` and ``idx == 31``; ``experiments/llava/model/language_model/llava_llama.py``'s
``forward``; ``only_utils/only_sample.py``'s ``elif use_only:``; quoted below where it matters):

1. In block ``enhance_layer_index``, take each head's attention weights ``a`` (after the softmax) and
   split the keys in two groups: the text (every seen key outside the image, but the first, the
   sequence's start token) and the image (the family's image block). In each group, weights above
   the group's ``mean + std`` (unbiased) are set to 0 (``torch.where(attn_weights_text >
   attn_weights_text.mean(-1, keepdim=True) + attn_weights_text.std(-1, keepdim=True), 0, ...)``, the
   text being ``[1:35]`` and ``[35+576:]``, the image ``[35:35+576]``). With ``p`` the group's remaining
   weights normalised to sum 1, ``H = -sum p log(p + 1e-6)``; the head's text-to-visual entropy ratio
   is ``TVER = H_text / H_image`` (``ratio = entropy_text.sum(-1) / entropy_img.sum(-1)``; a ``nan``
   entropy counts as 0 for text and ``inf`` for the image, as its ``nan_to_num``). Heads with
   ``TVER < mean(TVER)`` over the heads are zeroed (``removed_heads = torch.where(ratio < ratio.mean())``);
   the rest keep their outlier-free weights (not renormalised; the start token's weight is kept).
   ``o = W_o (a' V)``: the block's output projection of the intervened heads.
2. In the last block, ``x = 0.2 h + norm_in(o)`` with ``h`` the last block's input, and
   ``h_te = x + FFN(norm_post(x))`` (``hidden_states_cd = 0.2 * residual + hidden_states_cd`` after
   ``self.input_layernorm``; the block's own norms and FFN, on this row only; a block with sandwich
   norms (Gemma 2) runs its FFN half as it runs it).
3. ``l_te = lm_head(norm(h_te) + 0.5 norm(h_N))``, ``h_N`` the main path's last hidden state
   (``llava_llama.py``: ``hidden_states_cd = hidden_states_cd + 0.5 * outputs[0]``, both after the norm).
4. ``d = sum |softmax(l) - softmax(l_te)|`` (the L1 distance, as there, in ``[0, 2]``). If ``d < js_gamma``
   the two agree and are fused, ``l + alpha_pos l_te``; otherwise they are contrasted,
   ``(1 + alpha_neg) l - alpha_neg l_te``. Tokens with ``l < max l + log beta`` get ``-inf``
   (``only_sample.py``: ``tvd = torch.sum(torch.abs(softmax(l) - softmax(l_cd)))``, ``if tvd < js_gamma``,
   ``cutoff = log(ritual_beta) + max``). ``generate``'s processors and search then act on the result, as the
   reference applies its processors after the combination.

The main path (its cache, its blocks, its attention kernels) is left exactly as plain ``generate`` runs it;
only block ``enhance_layer_index`` computes one more attention row (eager-style, float32) beside its own
kernel (the reference computes it in the model's half precision). The second logits cost one row through the
last block's FFN and the LM head per step, the LM-head floor of the read-out methods (``readout.py``); no
second forward, no second cache.

Defaults: the reference's CHAIR script (``eval_bench/scripts/chair_eval.sh``: ``ritual_alpha_pos=3.0
ritual_alpha_neg=1.0 ritual_beta=0.1 js_gamma=0.25 enhance_layer_index=0``; its POPE script uses
``js_gamma=0.2``); the names drop the ``ritual_`` prefix the code inherited from RITUAL. Block 0 of
LLaVA-1.5's 32 is block 0 of any depth; the reference's last block (``idx == 31``) is the model's last,
its 35 system-prompt and 576 image columns come from the family's image block and the attention mask.
``alpha_pos=0, alpha_neg=0`` is exactly plain ``generate`` (nothing is installed; as VCD at ``alpha=0``,
the plausibility cut goes with it); ``js_gamma > 2`` (above the largest distance) always fuses, and
``js_gamma=0`` always contrasts. Differences from the reference, where it has no answer: the
heads are chosen and the distance measured per row (the reference pools a batch: it ran batch 1), and
padding is not a text key (so a prompt decodes the same alone and in a left-padded batch). A
sliding-window block whose cache no longer holds the whole prompt cannot place the image and is refused
(``GuardError``); choose a full-attention block there.

>>> import torch
>>> l, te = torch.tensor([[2.0, 1.0, -9.0]]), torch.tensor([[0.0, 3.0, 0.0]])
>>> combine(l, te, alpha_pos=3.0, alpha_neg=1.0, beta=0.1, js_gamma=0.25).tolist()
[[4.0, -1.0, -inf]]
>>> ONLY(alpha_pos=0, alpha_neg=0).enabled, ONLY().enhance_layer_index
(False, 0)
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from . import compat
from .attention import additive_mask, check_plain, expanded_rows, layer_attention, raw_logits
from .readout import TextStack

#: ``LlamaDecoderLayer.forward``: ``hidden_states_cd = 0.2 * residual + hidden_states_cd``
RESIDUAL_SHARE = 0.2
#: ``llava_llama.py``: ``hidden_states_cd = hidden_states_cd + 0.5 * outputs[0]``
MAIN_SHARE = 0.5
#: ``LlamaAttention.forward``: ``torch.log(attn_weights_text_norm + 1e-6)``
EPSILON = 1e-6


def _error(message: str):
    from .guarded import GuardError

    return GuardError(message)


def combine(final, enhanced, *, alpha_pos: float, alpha_neg: float, beta: float, js_gamma: float):
    """ONLY's adaptive combination of ``[rows, vocab]`` logits (step 4 of the module), per row."""
    final, enhanced = final.float(), enhanced.float()
    distance = (torch.softmax(final, -1) - torch.softmax(enhanced, -1)).abs().sum(-1, keepdim=True)
    fused = final + alpha_pos * enhanced
    contrasted = (1 + alpha_neg) * final - alpha_neg * enhanced
    out = torch.where(distance < js_gamma, fused, contrasted)
    cutoff = math.log(beta) + final.max(-1, keepdim=True).values
    return out.masked_fill(final < cutoff, -math.inf)


class ONLY:
    """ONLY's parameters, with the reference's names and defaults, validated on construction."""

    name = "only"

    def __init__(
        self,
        alpha_pos: float = 3.0,
        alpha_neg: float = 1.0,
        beta: float = 0.1,
        js_gamma: float = 0.25,
        enhance_layer_index: int = 0,
    ):
        for label, value in (("alpha_pos", alpha_pos), ("alpha_neg", alpha_neg), ("js_gamma", js_gamma)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < 0:
                raise ValueError(f"ONLY: {label} must be a finite number >= 0, got {value!r}")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 < beta <= 1:
            raise ValueError(f"ONLY: beta must be in (0, 1], got {beta!r}")
        if type(enhance_layer_index) is not int or enhance_layer_index < 0:
            raise ValueError(
                f"ONLY: enhance_layer_index must be an integer >= 0, got {enhance_layer_index!r}"
            )
        self.alpha_pos, self.alpha_neg = float(alpha_pos), float(alpha_neg)
        self.beta, self.js_gamma = float(beta), float(js_gamma)
        self.enhance_layer_index = enhance_layer_index

    @property
    def enabled(self) -> bool:
        return self.alpha_pos != 0 or self.alpha_neg != 0

    def combine(self, final: torch.Tensor, enhanced: torch.Tensor) -> torch.Tensor:
        return combine(final, enhanced, alpha_pos=self.alpha_pos, alpha_neg=self.alpha_neg, beta=self.beta,
                       js_gamma=self.js_gamma)

    def intervention(self, target, family, model, inputs: dict, config):
        """The one-layer intervention on ``target`` for one ``generate`` call (``guarded._in_loop``)."""
        stack = TextStack.of(target)
        if self.enhance_layer_index >= stack.n_layers:
            raise ValueError(
                f"ONLY: enhance_layer_index {self.enhance_layer_index} out of range; this language model "
                f"has {stack.n_layers} blocks (0..{stack.n_layers - 1})"
            )
        image = family.image_block(model, inputs["input_ids"]).repeat_interleave(expanded_rows(config), dim=0)
        return _installed(self, target, stack, image)


class _Step:
    """What one forward leaves for the second logits: each row's newest position only."""

    def __init__(self):
        self.attention = self.residual = self.normed = None


def _last_block_ffn(block, attention: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """Step 2 of the module: the last block's FFN half on the intervened attention output."""
    x = RESIDUAL_SHARE * residual + block.input_layernorm(attention)
    inner = getattr(block, "pre_feedforward_layernorm", None) or block.post_attention_layernorm
    out = block.mlp(inner(x))
    after = getattr(block, "post_feedforward_layernorm", None)
    return x + (out if after is None else after(out))


@contextmanager
def _installed(method: ONLY, target, stack: TextStack, image: torch.Tensor):
    last = stack.blocks[-1]
    if not all(hasattr(last, name) for name in ("input_layernorm", "post_attention_layernorm", "mlp")):
        raise _error(f"ONLY: the last block ({type(last).__name__}) has no input_layernorm, "
                     "post_attention_layernorm and mlp to run the textually enhanced row through")
    original = compat.attn_implementation(target.config.get_text_config())
    attention_module = stack.blocks[method.enhance_layer_index].self_attn
    own = compat.eager_attention(attention_module) if original == "eager" else sdpa_attention_forward
    step = _Step()

    def keep_residual(module, args, kwargs):
        step.residual = (args[0] if args else kwargs["hidden_states"])[:, -1:]

    def keep_normed(module, args, output):
        step.normed = output[:, -1:]

    def rewrite(module, args, kwargs, output):
        if "logits" not in output or any(v is None for v in (step.attention, step.residual, step.normed)):
            raise RuntimeError(
                f"ONLY: the forward of {type(module).__name__} did not run through the expected blocks or "
                "returned no logits; the textually enhanced logits cannot be built"
            )
        normed = step.normed  # (read first: the final norm below runs its hook again)
        with torch.no_grad():
            hidden = _last_block_ffn(last, step.attention, step.residual)
            hidden = stack.final_norm(hidden) + MAIN_SHARE * normed
            enhanced = stack.exit_logits(hidden[:, 0], norm=False)
            output["logits"] = method.combine(output["logits"][:, -1], enhanced)[:, None]
        step.attention = step.residual = step.normed = None
        return output

    function = TextEnhancedAttention(image, own, step)
    handles = [last.register_forward_pre_hook(keep_residual, with_kwargs=True)]
    try:
        handles.append(stack.final_norm.register_forward_hook(keep_normed))
        handles.append(target.register_forward_hook(rewrite, with_kwargs=True))
        with layer_attention(target, {method.enhance_layer_index: function}):
            yield
    finally:
        for handle in handles:
            handle.remove()


def _without_outliers(weights: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """``weights`` ``(rows, heads, keys)`` with those of ``group`` (``(rows, 1, keys)``) above the group's
    ``mean + std`` (unbiased, as ``torch.std``) set to 0."""
    count = group.sum(-1, keepdim=True)
    mean = torch.where(group, weights, 0.0).sum(-1, keepdim=True) / count
    spread = torch.where(group, weights - mean, 0.0).square().sum(-1, keepdim=True) / (count - 1)
    return weights.masked_fill(group & (weights > mean + spread.sqrt()), 0.0)


def _entropy(weights: torch.Tensor, group: torch.Tensor, empty: float) -> torch.Tensor:
    """Entropy of ``group``'s weights normalised to sum 1, per head; ``nan`` (all zero) becomes ``empty``."""
    total = torch.where(group, weights, 0.0).sum(-1, keepdim=True)
    p = torch.where(group, weights / total, 0.0)
    return torch.nan_to_num(-(p * torch.log(p + EPSILON)).sum(-1), nan=empty)


def intervened_heads(weights: torch.Tensor, text: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Step 1 of the module on the newest query's weights ``(rows, heads, keys)``, groups ``(rows, keys)``."""
    text, image = text[:, None], image[:, None]
    weights = _without_outliers(_without_outliers(weights, text), image)
    ratio = _entropy(weights, text, 0.0) / _entropy(weights, image, math.inf)
    removed = ratio < ratio.mean(-1, keepdim=True)
    return weights.masked_fill(removed[..., None], 0.0)


class TextEnhancedAttention:
    """The intervened block's attention function for one call: its own kernel's output, plus step 1 of
    the module on the newest query, projected by the block's ``o_proj`` and left in ``step``.

    ``image``: bool ``(rows, width)``, the image's key columns of each row as generate expands them.
    """

    def __init__(self, image: torch.Tensor, own, step: _Step):
        self.image, self.own, self.step = image, own, step

    def __call__(self, module, query, key, value, attention_mask, **kwargs):
        check_plain("ONLY", kwargs)
        output = self.own(module, query, key, value, attention_mask, **kwargs)
        rows, width = self.image.shape
        keys = key.shape[-2]
        if query.shape[0] != rows or keys < width:
            raise _error(
                f"ONLY: a forward of {query.shape[0]} rows and {keys} keys does not extend the prompt's "
                f"{rows} rows of {width} columns; the image columns cannot be placed"
            )
        newest = query[:, :, -1:]
        logits = raw_logits(newest, key, kwargs.get("scaling"), kwargs.get("softcap"))
        mask = None if attention_mask is None else attention_mask[:, :, -1:]
        mask = additive_mask(mask, newest, keys, logits.dtype)
        if mask is None:
            seen = torch.ones(rows, keys, dtype=torch.bool, device=logits.device)
        else:
            logits = logits + mask
            seen = (mask[:, 0, 0] == 0).expand(rows, keys)
        weights = torch.softmax(logits, dim=-1)[:, :, 0]  # (rows, heads, keys)
        image = torch.nn.functional.pad(self.image, (0, keys - width), value=False) & seen
        text = seen & ~image
        columns = torch.arange(keys, device=text.device)
        start = torch.where(text, columns, keys).amin(-1, keepdim=True)
        weights = intervened_heads(weights, text & (columns != start), image)
        groups = query.shape[1] // value.shape[1]
        value = value.repeat_interleave(groups, dim=1) if groups > 1 else value
        heads = torch.matmul(weights[:, :, None], value.float())  # (rows, heads, 1, dim)
        heads = heads.transpose(1, 2).reshape(rows, 1, -1).to(query.dtype)
        self.step.attention = module.o_proj(heads)
        return output
