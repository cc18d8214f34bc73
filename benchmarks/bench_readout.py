"""CPU cost of DoLa and DeCo against plain ``generate``, on the random ~100M LLaVA of ``bench_decoders``.

    pytest benchmarks/bench_readout.py -s --benchmark-columns=min,median,max
    HALLUGUARD_BENCH_DTYPE=bfloat16 pytest benchmarks/bench_readout.py -s

Both read earlier layers through the LM head: each early exit is one more ``[rows, hidden] x
[hidden, vocab]`` product per step. On this model the LM head (768 x 32064) is about a third of a
decoding step's weights, so an exit alone costs about 0.35x of plain; that is the floor no
implementation of the methods goes below. ``floor`` measures it: plain ``generate`` with a hook
that computes the same exits and throws them away. The summary gives, per batch (greedy, 64 new
tokens, decode steps only as in ``bench_decoders``), each method against plain and against the floor.
"""

from __future__ import annotations

from contextlib import contextmanager

import decode_timing
import pytest
import torch
import transformers
from bench_decoders import NEW_TOKENS, build_model, make_inputs

import halluguard
from halluguard.decoders.deco import DeCo
from halluguard.decoders.dola import DoLa
from halluguard.decoders.readout import TextStack, chosen_layers

ROUNDS = 3
METHODS = {"dola": DoLa(), "deco": DeCo()}
RESULTS: dict[tuple[str, int, int], float] = {}
#: the implementation's overhead over the floor this benchmark accepts
OVER_FLOOR = 1.15


@contextmanager
def exits_only(model, method):
    """Plain decoding plus the method's early exits, computed and dropped: the cost floor."""
    stack = TextStack.of(model)
    layers = chosen_layers(method, stack)
    kept = {}

    def keep(i):
        def hook(module, args, kwargs):
            kept[i] = (args[0] if args else kwargs["hidden_states"])[:, -1]

        return hook

    def exit_all(module, args, output):
        for i in layers:
            stack.exit_logits(kept[i], method.norm)

    handles = [stack.blocks[i].register_forward_pre_hook(keep(i), with_kwargs=True) for i in layers]
    handles.append(model.register_forward_hook(exit_all))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def run_fn(model, name: str, batch: int, new_tokens: int):
    inputs = make_inputs(batch)
    inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    kwargs = dict(max_new_tokens=new_tokens, do_sample=False)
    if name == "plain":
        return lambda: model.generate(**inputs, **kwargs)
    if name.startswith("floor"):
        method = METHODS[name.split(" ")[1]]

        def floor():
            with exits_only(model, method):
                return model.generate(**inputs, **kwargs)

        return floor
    guarded = halluguard.guard(model, name)
    return lambda: guarded.generate(**inputs, **kwargs)


NAMES = ["plain", "dola", "floor dola", "deco", "floor deco"]


def step_cost(name: str, batch: int) -> float:
    return decode_timing.step_cost(RESULTS, name, batch)


def summary(model) -> str:
    stack = TextStack.of(model)
    lines = [
        f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.get_num_threads()} "
        f"threads, {str(model.dtype).replace('torch.', '')}; exits: "
        + ", ".join(f"{n} {chosen_layers(m, stack)}" for n, m in METHODS.items()),
        "| batch | method | decode ms/token | x plain | floor x plain | x floor |",
        "|---|---|---|---|---|---|",
    ]
    for batch in (1, 4):
        plain = step_cost("plain", batch)
        for name in METHODS:
            cost, floor = step_cost(name, batch), step_cost(f"floor {name}", batch)
            lines.append(
                f"| {batch} | {name} | {cost * 1e3:.1f} | {cost / plain:.2f} | {floor / plain:.2f} | "
                f"{cost / floor:.2f} |"
            )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def model():
    return build_model()


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("new_tokens", [1, NEW_TOKENS])
def test_generate(benchmark, model, name, batch, new_tokens):
    fn = run_fn(model, name, batch, new_tokens)
    decode_timing.record(benchmark, fn, RESULTS, (name, batch, new_tokens), ROUNDS, "readout")


def test_summary_and_costs(benchmark, model):
    """The methods cost at most ``OVER_FLOOR`` times their LM-head floor, per decoded token."""
    if len(RESULTS) < 4 * len(NAMES):
        pytest.skip("run the whole module to get the summary")
    table = benchmark.pedantic(summary, args=(model,), rounds=1, iterations=1)  # (runs under --benchmark-only)
    print("\n" + table)
    for batch in (1, 4):
        for name in METHODS:
            ratio = step_cost(name, batch) / step_cost(f"floor {name}", batch)
            assert ratio <= OVER_FLOOR, f"{name} at batch {batch}: {ratio:.2f}x its LM-head floor"


if __name__ == "__main__":  # the same without pytest-benchmark
    net = build_model()
    decode_timing.measure(run_fn, net, NAMES, RESULTS, ROUNDS)
    print(summary(net))
