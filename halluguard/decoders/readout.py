"""Layer read-outs: correct the final layer's next-token logits with earlier layers' (DoLa, DeCo).

An early exit reads a decoder layer's hidden state at the newest position through the model's own
LM head (DeCo also through the final norm), as if the layers above it were not there. Layer ``i``
means what ``output_hidden_states`` means by ``hidden_states[i]``: the input of decoder block ``i``
(``0`` is the embedding output), for ``0 <= i < N``.

``readout(target, method)`` installs, for one ``generate`` call:

- a forward pre-hook on each chosen decoder block that keeps its input at the newest position
  (one ``[rows, hidden]`` tensor per layer and step; nothing else is stored);
- a forward hook on the model that replaces its output's next-token logits by
  ``method.correct(final, exits)``.

``generate``'s own processors (repetition penalty, suppressed tokens, temperature, top-k/p) and its
search (greedy, sampling, beam search's ``log_softmax`` + beam scores) then act on the corrected
logits, in the order of the reference implementations, which correct first. Hooks are removed when
the call ends, also when it raises. Every row is corrected on its own (beams, prompts of a batch).

>>> import torch
>>> from transformers import LlamaConfig, LlamaForCausalLM
>>> config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=4,
...                      num_attention_heads=2)
>>> model = LlamaForCausalLM(config).eval()
>>> stack = TextStack.of(model)
>>> stack.n_layers, stack.tied, len(model.model.layers[0]._forward_pre_hooks)
(4, False, 0)
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch


class ReadoutMethod:
    """Base of the read-out methods: which layers to read, and how to correct the final logits.

    Subclasses set ``name`` and ``norm`` (apply the final norm before the LM head) and define
    ``layers`` and ``correct``. Parameters are validated on construction; no model is needed.
    """

    name = ""
    norm = False

    @property
    def enabled(self) -> bool:
        """False when the parameters make the method a no-op (then nothing is installed)."""
        return True

    def layers(self, n_layers: int, tied: bool) -> list[int]:
        """The layers to read in ``n_layers`` blocks (``tied``: the LM head is the embedding matrix)."""
        raise NotImplementedError

    def correct(self, final: torch.Tensor, exits: dict[int, torch.Tensor]) -> torch.Tensor:
        """Corrected next-token logits ``[rows, vocab]`` (float32) from the final ones and the early exits."""
        raise NotImplementedError

    def intervention(self, target, family, model, inputs: dict, config):
        """The read-out installed on ``target`` for one ``generate`` call (``guarded._in_loop``)."""
        return readout(target, self)


@dataclass
class TextStack:
    """The parts of a language model an early exit goes through."""

    blocks: torch.nn.ModuleList
    final_norm: torch.nn.Module
    lm_head: torch.nn.Module
    softcap: float | None
    tied: bool

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @classmethod
    def of(cls, model) -> TextStack:
        """The decoder blocks, final norm and LM head, via ``get_decoder``/``get_output_embeddings``."""
        decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
        blocks = getattr(decoder, "layers", None)
        final_norm = getattr(decoder, "norm", None)
        lm_head = model.get_output_embeddings()
        if not isinstance(blocks, torch.nn.ModuleList) or final_norm is None or lm_head is None:
            raise TypeError(
                f"{type(model).__name__}: cannot find its decoder blocks (get_decoder().layers), final norm "
                "(get_decoder().norm) and LM head (get_output_embeddings()) for an early exit"
            )
        embeddings = model.get_input_embeddings()
        tied = embeddings is not None and embeddings.weight.data_ptr() == lm_head.weight.data_ptr()
        softcap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)
        return cls(blocks, final_norm, lm_head, softcap, tied)

    def exit_logits(self, hidden: torch.Tensor, norm: bool) -> torch.Tensor:
        """Logits of an early exit at ``hidden`` ``[rows, hidden]``, in float32."""
        if norm:
            hidden = self.final_norm(hidden)
        logits = self.lm_head(hidden).float()
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits


def chosen_layers(method: ReadoutMethod, stack: TextStack) -> list[int]:
    """The method's layers for this model, checked: each ``0 <= i < N``."""
    layers = method.layers(stack.n_layers, stack.tied)
    bad = [i for i in layers if not 0 <= i < stack.n_layers]
    if bad:
        raise ValueError(
            f"{method.name.upper()}: layer(s) {bad} out of range; this language model has "
            f"{stack.n_layers} blocks, so layers 0..{stack.n_layers - 1} (0 = the embedding output)"
        )
    return layers


@contextmanager
def readout(target, method: ReadoutMethod):
    """Within the block, ``target``'s next-token logits are ``method``'s corrected ones (see the module)."""
    stack = TextStack.of(target)
    layers = chosen_layers(method, stack)
    exits: dict[int, torch.Tensor] = {}

    def keep(index):
        def hook(module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            exits[index] = hidden[:, -1]

        return hook

    def rewrite(module, args, kwargs, output):
        if "logits" not in output or len(exits) != len(layers):
            raise RuntimeError(
                f"{method.name.upper()}: the forward of {type(module).__name__} did not run through the "
                "expected decoder blocks or returned no logits; the correction cannot be applied"
            )
        with torch.no_grad():
            early = {i: stack.exit_logits(exits[i], method.norm) for i in layers}
            final = output["logits"][:, -1].float()
            output["logits"] = method.correct(final, early)[:, None]
        exits.clear()
        return output

    handles = [stack.blocks[i].register_forward_pre_hook(keep(i), with_kwargs=True) for i in layers]
    handles.append(target.register_forward_hook(rewrite, with_kwargs=True))
    try:
        yield layers
    finally:
        for handle in handles:
            handle.remove()
