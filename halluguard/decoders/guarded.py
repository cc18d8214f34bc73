"""``guard(model, method)``: a drop-in ``model.generate`` that mitigates hallucination while decoding.

    guarded = halluguard.guard(model, "vcd", alpha=1.0, beta=0.1, seed=0)
    out = guarded.generate(**inputs, max_new_tokens=64)   # same arguments, same return type

The guarded object's ``generate`` takes exactly what ``model.generate`` takes and returns what it
returns; every other attribute is the model's. Two executions give the same tokens:

- ``"batched"`` (default where supported): one forward over ``[original; distorted]`` rows per
  step, through ``generate``'s ``custom_generate`` hook (``paired.py``); the distorted image is
  encoded once, before the loop.
- ``"sequential"``: ``generate``'s own loop with the method's logits processor, whose second
  branch keeps its own KV cache; its decoding steps ride along the main forward (``fused.py``:
  one forward over both branches' rows per step). It is used for beam search (the second cache
  follows the beams, and the processor returns log-probabilities of the contrastive distribution
  so that beams are ranked by it).

Randomness (VCD's noise, sampling) comes from ``seed``: the global RNG state is the same after a
guarded call as before it, and the same seed gives the same output.
"""

from __future__ import annotations

import copy
import functools
import inspect
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from transformers import LogitsProcessorList

from . import compat
from .attention import edit_blocks, expanded_rows
from .branch import PairedBranch, SequentialBranch
from .deco import DeCo
from .distortions import ROW_KEYS, left_pad
from .dola import DoLa
from .families import UNSUPPORTED_INPUTS, family_of
from .fused import fused_steps
from .icd import ICDLogitsProcessor
from .m3id import M3IDLogitsProcessor
from .memvr import MemVR
from .only import ONLY
from .opera import OPERA, opera_generate
from .pai import ImageAttention, PAILogitsProcessor
from .paired import PairPlan, paired_sample
from .vaf import VAF
from .vcd import VCDLogitsProcessor
from .vdd import VDDLogitsProcessor
from .vista import VISTA

#: Method name -> its class ("none" passes ``generate`` through): a contrastive logits processor with a
#: second branch, OPERA's beam search (``opera.py``), PAI's attention edit with a contrast (``pai.py``), or
#: a change of the forward in ``generate``'s own loop (``Guarded._in_loop``): a layer read-out
#: (``readout.py``), an attention edit (``vaf.py``), one block's heads read through the LM head
#: (``only.py``), visual memory in an FFN (``memvr.py``), a steered residual stream (``vista.py``).
METHODS: dict[str, type | None] = {
    "none": None,
    "vcd": VCDLogitsProcessor,
    "icd": ICDLogitsProcessor,
    "vdd": VDDLogitsProcessor,
    "m3id": M3IDLogitsProcessor,
    "dola": DoLa,
    "deco": DeCo,
    "opera": OPERA,
    "pai": PAILogitsProcessor,
    "vaf": VAF,
    "only": ONLY,
    "memvr": MemVR,
    "vista": VISTA,
}
EXECUTIONS = ("batched", "sequential")
#: Generation modes that transformers moved to the Hub; the contrast cannot follow them.
_UNSUPPORTED_MODES = {
    "num_beam_groups": "group beam search",
    "constraints": "constrained beam search",
    "force_words_ids": "constrained beam search",
    "penalty_alpha": "contrastive search",
    "dola_layers": "DoLa decoding",
}


class GuardError(ValueError):
    """A guarded ``generate`` call that cannot be run as asked."""


@contextmanager
def isolated_rng(seed: int | None, device: torch.device | str = "cpu"):
    """Run the block on a private copy of the global RNG, seeded with ``seed`` (fresh if ``None``).

    >>> state = torch.random.get_rng_state()
    >>> with isolated_rng(0):
    ...     a = torch.rand(1)
    >>> with isolated_rng(0):
    ...     b = torch.rand(1)
    >>> bool(torch.equal(a, b)), bool(torch.equal(state, torch.random.get_rng_state()))
    (True, True)
    """
    if seed is None:
        seed = torch.Generator().seed()
    device = torch.device(device)
    cuda = []
    if device.type == "cuda":
        cuda = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(int(seed))
        if cuda:
            with torch.cuda.device(cuda[0]):
                torch.cuda.manual_seed(int(seed))
        yield


def _method_class(method: str):
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise GuardError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    return METHODS[method.lower()]


def _stack(first: dict, second: dict, image_keys: tuple[str, ...]) -> dict:
    """Rows of ``first`` then rows of ``second`` (same width), images of both in the same order."""
    out: dict[str, Any] = {}
    for key in (*ROW_KEYS, "inputs_embeds"):
        if first.get(key) is not None and second.get(key) is not None:
            out[key] = torch.cat([first[key], second[key].to(first[key].device)], dim=0)
    for key in image_keys:
        parts = [part[key] for part in (first, second) if part.get(key) is not None]
        if parts:
            out[key] = torch.cat(parts, dim=0) if len(parts) > 1 else parts[0]
    for key, value in first.items():
        out.setdefault(key, value)
    return out


class Guarded:
    """A model whose ``generate`` mitigates hallucination; every other attribute is the model's.

    Built by :func:`guard`. The wrapped model is ``guarded.__wrapped__``.
    """

    def __init__(
        self, model, method: str = "vcd", *, execution: str | None = None, seed: int | None = None, **params
    ):
        cls = _method_class(method)
        if execution is not None and execution not in EXECUTIONS:
            raise GuardError(f"unknown execution {execution!r}; valid: {', '.join(EXECUTIONS)}")
        object.__setattr__(self, "__wrapped__", model)
        object.__setattr__(self, "_method", method.lower())
        object.__setattr__(self, "_execution", execution)
        object.__setattr__(self, "_seed", seed)
        if cls is not None:
            family_of(model)
            params = self._check_params(cls, params)
        elif params:
            raise GuardError(f"method 'none' takes no parameters, got {', '.join(sorted(params))}")
        object.__setattr__(self, "_params", params)

    @staticmethod
    def _check_params(method_cls, params: dict) -> dict:
        internal = {"self", "model", "inputs", "branch", "renormalize", "seed"}
        accepted = set(inspect.signature(method_cls.__init__).parameters) - internal
        unknown = set(params) - accepted
        if unknown:
            raise GuardError(
                f"{method_cls.name.upper()} got unknown parameter(s) {', '.join(sorted(unknown))}; "
                f"it takes {', '.join(sorted(accepted | {'seed', 'execution'}))}"
            )
        if hasattr(method_cls, "intervention") or method_cls is OPERA:
            method_cls(**params)  # validates the values
        else:
            method_cls(branch=PairedBranch(), **params)
        return params

    # -- delegation ---------------------------------------------------------------------------
    def __getattr__(self, name: str):
        value = getattr(self.__wrapped__, name)
        if inspect.ismethod(value) and value.__self__ is self.__wrapped__:
            return self._chained(value)
        return value

    def _chained(self, method):
        """The model's method, returning this guarded model where it returns the model (``.to()``,
        ``.eval()``, ``.half()``, ...), so that chained calls keep the mitigation."""

        @functools.wraps(method)
        def call(*args, **kwargs):
            result = method(*args, **kwargs)
            return self if result is self.__wrapped__ else result

        return call

    def __setattr__(self, name: str, value) -> None:
        setattr(self.__wrapped__, name, value)

    def __call__(self, *args, **kwargs):
        return self.__wrapped__(*args, **kwargs)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in sorted(self._params.items()) if k != "tokenizer")
        params = f", {params}" if params else ""
        return f"Guarded({type(self.__wrapped__).__name__}, method={self._method!r}{params})"

    # -- generate -----------------------------------------------------------------------------
    def generate(self, *args, **kwargs):
        """``model.generate`` with the method applied; same arguments, same return value."""
        model = self.__wrapped__
        cls = METHODS[self._method]
        if cls is None:
            with isolated_rng(self._seed, model.device):
                return model.generate(*args, **kwargs)
        family = family_of(model)
        inputs, gen_kwargs = self._split(model, family, args, kwargs)
        if hasattr(cls, "intervention"):
            return self._in_loop(cls(**self._params), family, inputs, gen_kwargs)
        if cls is OPERA:
            return self._opera(cls(**self._params), family, inputs, gen_kwargs)
        if cls is PAILogitsProcessor:
            return self._pai(family, inputs, gen_kwargs)
        return self._contrast(cls, family, inputs, gen_kwargs)

    def _contrast(self, cls, family, inputs: dict, gen_kwargs: dict, around=None):
        """A contrastive method: its branch in the main forward (sequential) or stacked below it
        (batched). ``around(target, suspended)``, if given, is entered around the decoding, with a
        callable that says whether the branch is running a forward of its own."""
        model = self.__wrapped__
        params = dict(self._params)
        if cls is VCDLogitsProcessor:
            params["seed"] = self._seed
        user_processors = list(gen_kwargs.pop("logits_processor", None) or [])
        with torch.no_grad(), isolated_rng(self._seed, model.device):
            target, main = family.to_target(model, inputs)
            config = self._effective_config(target, gen_kwargs)
            execution = self._choose_execution(config, gen_kwargs)
            probe = cls(branch=PairedBranch(), **params)
            _, branch_inputs = family.to_target(model, probe.distort(family, model, dict(inputs)))
            if execution == "sequential":
                branch = SequentialBranch(target, branch_inputs)
                processor = cls(branch=branch, renormalize=(config.num_beams or 1) > 1, **params)
                processors = LogitsProcessorList([*user_processors, processor])
                with fused_steps(target, branch, config, family.image_keys) as cache, (
                    nullcontext() if around is None else around(target, lambda: branch.busy)
                ):
                    return target.generate(**main, **gen_kwargs, **cache, logits_processor=processors)
            pair = PairedBranch()
            processors = LogitsProcessorList([*user_processors, cls(branch=pair, **params)])
            with nullcontext() if around is None else around(target, lambda: False):
                return self._batched(
                    family, target, main, branch_inputs, config, gen_kwargs, pair, processors
                )

    def _pai(self, family, inputs: dict, gen_kwargs: dict):
        """PAI: its attention edit for the call, around its guidance (a contrast) or plain decoding."""
        model = self.__wrapped__
        method = PAILogitsProcessor(branch=PairedBranch(), **self._params)
        if not method.edits:
            return self._contrast(PAILogitsProcessor, family, inputs, gen_kwargs)
        expand = expanded_rows(self._effective_config(model, gen_kwargs))
        columns = family.image_block(model, inputs["input_ids"]).repeat_interleave(expand, dim=0)

        def edited(target, suspended):
            return edit_blocks(target, method.layers, ImageAttention(method.alpha, columns, suspended))

        if method.enabled:
            return self._contrast(PAILogitsProcessor, family, inputs, gen_kwargs, around=edited)
        with torch.no_grad(), isolated_rng(self._seed, model.device):
            target, main = family.to_target(model, inputs)
            self._check_modes(self._effective_config(target, gen_kwargs))
            with edited(target, lambda: False):
                return target.generate(**main, **gen_kwargs)

    def _in_loop(self, method, family, inputs: dict, gen_kwargs: dict):
        """``generate``'s own loop inside ``method.intervention(...)``: the methods that change the
        model's forward for the call (DoLa, DeCo, VAF, ONLY, MemVR, VISTA). Plain ``generate`` when the
        method is off.

        The protocol: ``method.enabled`` (False: nothing is installed) and
        ``method.intervention(target, family, model, inputs, config)``, a context manager that installs
        the change on ``target`` (the module whose ``generate`` runs) and removes it on exit, also on
        error. ``inputs`` are the call's model inputs, ``config`` its effective generation config.
        """
        model = self.__wrapped__
        with torch.no_grad(), isolated_rng(self._seed, model.device):
            target, main = family.to_target(model, inputs)
            config = self._effective_config(target, gen_kwargs)
            self._check_modes(config)
            if not method.enabled:
                return target.generate(**main, **gen_kwargs)
            with method.intervention(target, family, model, inputs, config):
                return target.generate(**main, **gen_kwargs)

    def _opera(self, method: OPERA, family, inputs: dict, gen_kwargs: dict):
        """OPERA's beam search, prompt by prompt (``opera.py``); plain ``generate`` when it is off."""
        model = self.__wrapped__
        with torch.no_grad(), isolated_rng(self._seed, model.device):
            if not method.enabled:
                target, main = family.to_target(model, inputs)
                self._check_modes(self._effective_config(target, gen_kwargs))
                return target.generate(**main, **gen_kwargs)
            self._check_modes(self._effective_config(model, gen_kwargs))
            return opera_generate(model, method, inputs, gen_kwargs)

    def _batched(self, family, target, main, branch_inputs, config, gen_kwargs, pair, processors):
        """Stack ``[main; branch]`` rows (left-padded to one width) and decode them with ``paired_sample``."""
        model = self.__wrapped__
        pad = family.pad_token_id(model)
        length = main["input_ids"].shape[1]
        width = max(length, branch_inputs["input_ids"].shape[1])
        stacked = _stack(left_pad(main, width, pad), left_pad(branch_inputs, width, pad), family.image_keys)
        if width > length:
            self._relative_lengths(config, gen_kwargs, length)
        plan = PairPlan(
            pair,
            extra=width - length,
            streamer=gen_kwargs.pop("streamer", None),
            logits_processor=processors,
            prefix_allowed_tokens_fn=gen_kwargs.pop("prefix_allowed_tokens_fn", None),
            negative_prompt_ids=gen_kwargs.pop("negative_prompt_ids", None),
            negative_prompt_attention_mask=gen_kwargs.pop("negative_prompt_attention_mask", None),
        )
        return target.generate(**stacked, **gen_kwargs, custom_generate=paired_sample, halluguard_pair=plan)

    def _split(self, model, family, args, kwargs) -> tuple[dict, dict]:
        """Separate the model inputs (ids, images) from the generation arguments."""
        signature = inspect.signature(type(model).generate)
        try:
            bound = signature.bind(model, *args, **kwargs)
        except TypeError as error:
            raise GuardError(
                f"generate() arguments do not match {type(model).__name__}.generate: {error}"
            ) from None
        arguments: dict[str, Any] = {}
        for name, value in list(bound.arguments.items())[1:]:
            if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(value)
            else:
                arguments[name] = value
        if arguments.get("inputs") is not None:
            arguments.setdefault(model.main_input_name, arguments["inputs"])
        arguments.pop("inputs", None)
        for key, reason in UNSUPPORTED_INPUTS.items():
            if arguments.get(key) is not None:
                raise GuardError(f"{self._method.upper()} cannot run with {key}: {reason}")
        for key in ("custom_generate", "assistant_model"):
            if arguments.get(key) is not None:
                raise GuardError(f"{key} cannot be combined with {self._method.upper()}")
        given_cache = compat.find_cache(arguments)
        if given_cache is not None:
            raise GuardError(
                f"{self._method.upper()} builds the caches of its call itself; pass no cache "
                f"(got a {type(given_cache).__name__}), or use cache_implementation to choose its kind"
            )
        inputs = {}
        for key in (*family.input_keys, "token_type_ids", "mm_token_type_ids"):
            value = arguments.pop(key, None)
            if value is not None:
                inputs[key] = value
        if inputs.get("input_ids") is None:
            raise GuardError("pass input_ids (the processor's output) to the guarded generate")
        gen_kwargs = {k: v for k, v in arguments.items() if v is not None}
        return inputs, gen_kwargs

    @staticmethod
    def _relative_lengths(config, gen_kwargs: dict, prompt_length: int) -> None:
        """State lengths so that extra left padding of the prompt does not change them.

        ``generate`` measures ``max_length`` and ``min_new_tokens`` on the padded rows; the
        equivalent ``max_new_tokens`` and ``min_length`` (checked on the unpadded rows the
        processors see) keep the meaning they have for plain ``generate``.
        """
        if config.max_new_tokens is None:
            gen_kwargs["max_new_tokens"] = max(compat.default_max_length(config) - prompt_length, 0)
            gen_kwargs.pop("max_length", None)
        if config.min_new_tokens:
            gen_kwargs["min_length"] = max(
                int(config.min_length or 0), prompt_length + int(config.min_new_tokens)
            )
            gen_kwargs["min_new_tokens"] = None

    @staticmethod
    def _effective_config(model, gen_kwargs: dict):
        config = copy.deepcopy(gen_kwargs.get("generation_config") or model.generation_config)
        config.update(**{k: v for k, v in gen_kwargs.items() if k != "generation_config"})
        return config

    def _check_modes(self, config) -> None:
        for key, mode in _UNSUPPORTED_MODES.items():
            value = getattr(config, key, None)
            if value not in (None, 0, 1, [], ()) and not (key == "penalty_alpha" and not value):
                hint = "; pass dola_layers to guard(model, 'dola', ...)" if key == "dola_layers" else ""
                raise GuardError(f"{mode} cannot be combined with {self._method.upper()}{hint}")
        if hasattr(METHODS[self._method], "intervention") and config.cache_implementation == "paged":
            raise GuardError(f"continuous batching (cache_implementation='paged') cannot be combined with "
                             f"{self._method.upper()}")

    def _choose_execution(self, config, gen_kwargs: dict) -> str:
        self._check_modes(config)
        if (config.num_beams or 1) > 1:
            if self._execution == "batched":
                raise GuardError(
                    "beam search needs execution='sequential' (the contrast branch follows the beams there)"
                )
            return "sequential"
        if gen_kwargs.get("cache_implementation") == "paged" or config.cache_implementation == "paged":
            raise GuardError(
                "continuous batching (cache_implementation='paged') cannot be combined with "
                f"{self._method.upper()}"
            )
        return self._execution or "batched"


def guard(
    model, method: str = "vcd", *, execution: str | None = None, seed: int | None = None, **params
) -> Guarded:
    """Wrap ``model`` so that its ``generate`` applies ``method`` (a name of :data:`METHODS`).

    ``params`` are the method's (VCD: ``alpha``, ``beta``, ``noise_step``; ICD: ``tokenizer``,
    ``alpha``, ``beta``, ``instruction``; VDD: ``alpha``, ``beta``; M3ID: ``lam``, ``alpha``; DoLa:
    ``dola_layers``, ``relative_top``; DeCo: ``alpha``, ``threshold_top_p``, ``threshold_top_k``,
    ``early_exit_layers``; OPERA: ``scale_factor``, ``threshold``, ``num_attn_candidates``,
    ``penalty_weights``, ``window_size``, ``retrospection``; PAI: ``alpha``, ``gamma``, ``start_layer``,
    ``end_layer``; VAF: ``enh_para``, ``sup_para``, ``start_layer``, ``end_layer``; ONLY: ``alpha_pos``,
    ``alpha_neg``, ``beta``, ``js_gamma``, ``enhance_layer_index``; MemVR: ``retracing_ratio``,
    ``entropy_threshold``, ``starting_layer``, ``ending_layer``; VISTA: ``vsv``, ``vsv_lambda``,
    ``vsv_layers``, ``logits_aug``, ``logits_alpha``, ``logits_layers``). ``seed`` seeds
    VCD's noise and sampling;
    ``execution`` ("batched" or "sequential") chooses how the contrastive methods run their second branch.

    A tiny random LLaVA, built offline:

    >>> import torch
    >>> from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration
    >>> vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
    ...                           num_attention_heads=2, image_size=8, patch_size=4)
    >>> text = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
    ...                    num_attention_heads=2, pad_token_id=0, eos_token_id=2)
    >>> config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=63)
    >>> model = LlavaForConditionalGeneration(config).eval()
    >>> ids = torch.tensor([[1, 63, 63, 63, 63, 5, 6]])  # (8 / 4) ** 2 = 4 image placeholders
    >>> guarded = guard(model, "vcd", seed=0)
    >>> pixels = torch.zeros(1, 3, 8, 8)
    >>> out = guarded.generate(input_ids=ids, pixel_values=pixels, max_new_tokens=3, min_new_tokens=3)
    >>> out.shape, guarded.config is model.config
    (torch.Size([1, 10]), True)

    >>> guard(object(), "nope")
    Traceback (most recent call last):
    ...
    halluguard.decoders.guarded.GuardError: unknown method 'nope'; valid methods: none, vcd, icd, vdd, m3id,
    dola, deco, opera, pai, vaf, only, memvr, vista
    """
    return Guarded(model, method, execution=execution, seed=seed, **params)
