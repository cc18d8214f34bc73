"""Every place where the decoders rely on more of transformers than its public API, in one module.

The rest of ``halluguard.decoders`` builds on public ground: ``generate`` and its ``custom_generate``
hook, ``LogitsProcessor``, the ``Cache`` classes (found by type, never by the name a release gives
them), torch forward hooks. What remains is below, each with what it assumes;
``tests/decoders/test_compat.py`` checks every assumption on the installed release and names that
release when one no longer holds. Supported: the range ``pyproject.toml`` declares, tested in CI on
both of its ends.

Examples of the two lookups the rest of the package uses most:

>>> from transformers import DynamicCache
>>> cache = DynamicCache()
>>> find_cache({"input_ids": None, "past_key_values": cache}) is find_cache({"cache": cache}) is cache
True
>>> find_cache({"attention_mask": None}) is None
True
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from contextlib import contextmanager

import torch
import transformers
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer
from transformers.generation.utils import GenerateDecoderOnlyOutput
from transformers.utils import ModelOutput

#: The installed release, for messages.
VERSION = transformers.__version__
#: Per-call state some families keep on the model (Qwen's M-RoPE offsets, on the model and its base).
_STATE_ATTRIBUTES = ("rope_deltas",)


class CompatibilityError(RuntimeError):
    """The installed transformers does not do what the decoders rely on; the message names the release."""


def broken(what: str) -> CompatibilityError:
    return CompatibilityError(
        f"transformers {VERSION}: {what}. halluguard's decoders do not support this release yet: "
        "install one of the releases CI tests (see the README's 'transformers releases') "
        "or report it with this message"
    )


# -- caches: found by type, passed by the name the model's forward takes ---------------------------
def find_cache(mapping) -> Cache | None:
    """The ``Cache`` among the values of a dict or a model output (5.24 renamed its key to ``cache``)."""
    values = mapping.values() if hasattr(mapping, "values") else ()
    return next((value for value in values if isinstance(value, Cache)), None)


def cache_key(mapping) -> str | None:
    """The key under which ``mapping`` holds its ``Cache``, or None."""
    return next((key for key, value in mapping.items() if isinstance(value, Cache)), None)


def cache_keyword(model) -> str:
    """The keyword ``model``'s forward (and so ``generate``) takes its cache by: ``cache`` from 5.24 on."""
    parameters = inspect.signature(model.forward).parameters
    for name in ("cache", "past_key_values"):
        if name in parameters:
            return name
    raise broken(f"{type(model).__name__}.forward takes neither 'cache' nor 'past_key_values'")


def new_cache(model) -> DynamicCache:
    """The cache ``generate`` would build for ``model`` by default (public constructor)."""
    return DynamicCache(config=model.config.get_text_config(decoder=True))


def plain_layers(cache) -> bool:
    """Whether every layer of ``cache`` is a ``DynamicLayer``: full keys and values per row, tensors
    of shape ``(rows, heads, length, head_dim)`` in ``layer.keys`` / ``layer.values``."""
    return isinstance(cache, DynamicCache) and all(type(layer) is DynamicLayer for layer in cache.layers)


def layer_tensors(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(keys, values)`` of each layer of a cache with :func:`plain_layers`."""
    return [(layer.keys, layer.values) for layer in cache.layers]


def set_layer_tensors(cache, tensors) -> None:
    """Point each layer of a cache with :func:`plain_layers` at the given ``(keys, values)``."""
    for layer, (keys, values) in zip(cache.layers, tensors):
        layer.keys, layer.values = keys, values


def cache_from_tensors(tensors) -> DynamicCache:
    """A ``DynamicCache`` holding the given per-layer ``(keys, values)`` (public ``update``)."""
    cache = DynamicCache()
    for index, (keys, values) in enumerate(tensors):
        cache.update(keys, values, index)
    return cache


def with_cache(output_cls, cache, **fields):
    """An instance of a generate output class with ``cache`` in its cache field, whatever its name."""
    names = {field.name for field in dataclasses.fields(output_cls)}
    key = next((name for name in ("cache", "past_key_values") if name in names), None)
    if key is None:
        raise broken(f"{output_cls.__name__} has no cache field")
    return output_cls(**fields, **{key: cache})


def decoder_output(cache, **fields) -> GenerateDecoderOnlyOutput:
    """What greedy search and sampling return with ``return_dict_in_generate=True``."""
    return with_cache(GenerateDecoderOnlyOutput, cache, **fields)


# -- generate's preparation and steps --------------------------------------------------------------
def step_inputs(model, input_ids, model_kwargs: dict, *, first: bool = False) -> dict:
    """The model inputs of the next step (the whole prompt when ``first``): the model's own
    ``prepare_inputs_for_generation`` (public, overridden per family), with generate's keywords."""
    if first:
        return model.prepare_inputs_for_generation(input_ids, is_first_iteration=True, **model_kwargs)
    return model.prepare_inputs_for_generation(input_ids, next_sequence_length=1, **model_kwargs)


def advance(model, model_kwargs: dict, outputs=None) -> dict:
    """generate's model kwargs after one more token: the model's own (private)
    ``_update_model_kwargs_for_generation``, which extends masks, positions and token types the way
    the family needs. Without ``outputs`` the cache in ``model_kwargs`` stays as it is."""
    return model._update_model_kwargs_for_generation(
        ModelOutput() if outputs is None else outputs, model_kwargs, is_encoder_decoder=False
    )


def logits_processors(model, **arguments):
    """The logits processors plain ``generate`` builds from a config (private ``_get_logits_processor``)."""
    return model._get_logits_processor(**arguments)


def pad_token(config) -> torch.Tensor | None:
    """The pad token generate resolved for this call (private ``GenerationConfig._pad_token_tensor``)."""
    if not hasattr(config, "_pad_token_tensor"):
        raise broken("GenerationConfig._pad_token_tensor is gone")
    return config._pad_token_tensor


def default_max_length(config) -> int:
    """The ``max_length`` generate uses when none is given (private ``_get_default_generation_params``)."""
    return int(config.max_length or type(config)._get_default_generation_params()["max_length"])


@contextmanager
def preserved_state(model):
    """Keep per-call model state (Qwen's ``rope_deltas``) as it was before the block."""
    holders = [
        (holder, name)
        for holder in (model, getattr(model, "model", None))
        if holder is not None
        for name in _STATE_ATTRIBUTES
        if hasattr(holder, name)
    ]
    saved = [getattr(holder, name) for holder, name in holders]
    try:
        yield
    finally:
        for (holder, name), value in zip(holders, saved):
            setattr(holder, name, value)


def keep_state_rows(model, rows: int) -> None:
    """Keep the first ``rows`` rows of per-call model state computed for twice as many (paired rows)."""
    for holder in (model, getattr(model, "model", None)):
        for name in _STATE_ATTRIBUTES:
            value = getattr(holder, name, None)
            if isinstance(value, torch.Tensor) and value.shape[0] == 2 * rows:
                setattr(holder, name, value[:rows])


def attn_implementation(config) -> str | None:
    """The attention implementation a (sub-)config selects (private ``_attn_implementation``; the
    public setter is ``PreTrainedModel.set_attn_implementation``)."""
    if not hasattr(config, "_attn_implementation"):
        raise broken(f"{type(config).__name__}._attn_implementation is gone")
    return config._attn_implementation


def eager_attention(module):
    """The eager attention function of ``module``'s family: the ``eager_attention_forward`` its
    modeling module defines (a module-level name, not exported), which returns the weights."""
    function = getattr(sys.modules.get(type(module).__module__), "eager_attention_forward", None)
    if not callable(function):
        raise broken(f"{type(module).__module__} defines no eager_attention_forward")
    return function


def describe(what: str, cost: str) -> str:
    """A fallback warning's text: what could not be done, on which release, and what it costs."""
    return f"halluguard (transformers {VERSION}): {what}; {cost}. The tokens are exact."
