"""CPU cost of OPERA against plain beam search (4 beams), on the random ~100M LLaVA of ``bench_decoders``.

    pytest benchmarks/bench_opera.py -s --benchmark-columns=min,median,max
    HALLUGUARD_BENCH_DTYPE=bfloat16 pytest benchmarks/bench_opera.py -s

The reference runs one forward per candidate (1 + 5 per step; re-measurements put it at 3.7-9.3x
greedy decoding). Here every beam's candidates are the tokens of one lookahead forward whose results
are the next step (``halluguard/decoders/opera_lookahead.py``), and only the last layer runs eager
attention. Rows: plain beam search on the model as loaded (SDPA); OPERA on it; and both on a copy
loaded with eager attention everywhere (what the reference needs). Per decoded token (decode steps
only: the 1-token run's time taken off, as in ``bench_decoders``), batches of 1 and 4 prompts (OPERA
decodes a batch prompt by prompt, as the reference).
"""

from __future__ import annotations

import decode_timing
import pytest
from bench_decoders import NEW_TOKENS, build_model, make_inputs

import halluguard

BEAMS = 4
ROUNDS = 2
#: the target: OPERA at most this many times plain beam search per decoded token, one prompt
TARGET = 2.0
NAMES = ["plain", "opera", "plain eager", "opera eager"]
RESULTS: dict[tuple[str, int, int], float] = {}


def run_fn(models, name: str, batch: int, new_tokens: int):
    model = models["eager" if name.endswith("eager") else "sdpa"]
    inputs = make_inputs(batch)
    inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    kwargs = dict(max_new_tokens=new_tokens, num_beams=BEAMS, do_sample=False)
    runner = halluguard.guard(model, "opera") if name.startswith("opera") else model
    return lambda: runner.generate(**inputs, **kwargs)


def step_cost(name: str, batch: int) -> float:
    return decode_timing.step_cost(RESULTS, name, batch)


def summary(model) -> str:
    setting = f"{BEAMS} beams"
    return decode_timing.table(RESULTS, model, NAMES, setting, rows="prompts", plain="x plain (SDPA)")


def build_models() -> dict:
    eager = build_model()
    eager.set_attn_implementation({"text_config": "eager"})
    return {"sdpa": build_model(), "eager": eager}


@pytest.fixture(scope="module")
def models():
    return build_models()


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("new_tokens", [1, NEW_TOKENS])
def test_generate(benchmark, models, name, batch, new_tokens):
    fn = run_fn(models, name, batch, new_tokens)
    decode_timing.record(benchmark, fn, RESULTS, (name, batch, new_tokens), ROUNDS, "opera")


def test_summary_and_cost(benchmark, models):
    """OPERA costs at most ``TARGET`` times plain beam search per decoded token, one prompt at a time."""
    if len(RESULTS) < 4 * len(NAMES):
        pytest.skip("run the whole module to get the summary")
    table = benchmark.pedantic(summary, args=(models["sdpa"],), rounds=1, iterations=1)
    print("\n" + table)
    ratio = step_cost("opera", 1) / step_cost("plain", 1)
    assert ratio <= TARGET, f"OPERA: {ratio:.2f}x plain beam search per token"


if __name__ == "__main__":  # the same without pytest-benchmark
    nets = build_models()
    decode_timing.measure(run_fn, nets, NAMES, RESULTS, ROUNDS)
    print(summary(nets["sdpa"]))
