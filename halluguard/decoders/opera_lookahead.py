"""OPERA's lookahead: every beam's candidate tokens decoded side by side in one forward.

The reference (shikiw/OPERA, ``transformers-4.29.2/src/transformers/generation/utils.py``,
``opera_beam_search``) runs one forward per candidate on a copy of the cache to read the candidate's
last-layer attention row. Here the ``C`` candidates of a beam are ``C`` new tokens of one forward, all
at the next position, each seeing the cached tokens and itself only: a custom 4D attention mask, which
transformers' mask functions pass through as given. Each candidate's logits, attention row and cache
entries are then those of a forward of it alone, and the search keeps the chosen ones for its next
step (``opera_search.py``) instead of running that step's forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import compat


@dataclass
class Lookahead:
    """Every beam's candidates decoded side by side, one forward: what the next step reuses."""

    logits: torch.Tensor  # [beams, C, vocab]: each candidate's next-token logits
    rows: torch.Tensor | None  # [beams, C, keys]: each candidate's normalised attention row
    cached: int  # the cache's length before the candidates


#: Step inputs that hold one value per new token (besides ``input_ids``), widened to the candidates.
PER_TOKEN = ("position_ids", "cache_position", "token_type_ids", "mm_token_type_ids")


def lookahead(model, ids, model_kwargs, candidates, capture) -> Lookahead:
    """Each beam's ``C`` candidates as ``C`` new tokens of one forward on the beam's cache: all at the
    next position, each seeing the cache and itself only (a custom 4D mask, which transformers passes
    through as given). A candidate's logits and attention row are those of a forward of it alone.
    The cache keeps the ``C`` entries until :func:`keep_chosen` or :func:`drop_candidates`."""
    inputs = compat.step_inputs(model, torch.cat([ids, candidates[:, :1]], dim=-1), model_kwargs)
    beams, count = candidates.shape
    cached = compat.find_cache(model_kwargs).get_seq_length()
    for key in PER_TOKEN:
        if isinstance(inputs.get(key), torch.Tensor):
            value = inputs[key][..., -1:]
            inputs[key] = value.expand(*value.shape[:-1], count).contiguous()
    dtype = model.get_input_embeddings().weight.dtype
    given = inputs.get("attention_mask")
    seen = torch.ones(beams, cached, dtype=torch.bool, device=ids.device) if given is None else given.bool()
    mask = seen[:, None, :cached].expand(beams, count, cached)
    own = torch.eye(count, dtype=torch.bool, device=ids.device).expand(beams, count, count)
    allowed = torch.cat([mask, own], dim=-1)[:, None]
    zero = torch.zeros((), dtype=dtype, device=ids.device)
    inputs["attention_mask"] = torch.where(allowed, zero, torch.finfo(dtype).min)
    inputs.update(input_ids=candidates, logits_to_keep=count)
    outputs = model(**inputs, return_dict=True)
    rows = None if capture is None else capture.candidate_rows()
    return Lookahead(outputs.logits[:, -count:].float(), rows, cached)


def keep_chosen(cache, parents, choice, cached: int) -> None:
    """The chosen beams' cache after a lookahead: each parent's entries, then its chosen candidate's."""
    def pick(tensor):  # [beams, heads, cached + C, dim] -> [chosen, heads, cached + 1, dim]
        own = tensor[:, :, cached:][parents, :, choice]  # (advanced indices first: [chosen, heads, dim])
        return torch.cat([tensor[parents, :, :cached], own[:, :, None]], dim=2)

    tensors = compat.layer_tensors(cache)
    compat.set_layer_tensors(cache, [(pick(keys), pick(values)) for keys, values in tensors])


def drop_candidates(cache, count: int) -> None:
    """The cache without the lookahead's ``count`` entries."""
    cache.crop(-count)
