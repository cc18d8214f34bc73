"""CPU cost of guarded ``generate`` (VCD) against plain ``generate``, on a random ~100M LLaVA.

    pytest benchmarks/bench_decoders.py -s --benchmark-columns=min,median,max
    python benchmarks/bench_decoders.py [--threads 2] [--dtype bfloat16]   # the same without pytest-benchmark
    HALLUGUARD_BENCH_DTYPE=bfloat16 pytest benchmarks/bench_decoders.py -s  # the model in bfloat16

Each configuration (plain, batched, sequential; batch 1 and 4; plain also at batch 2, the cost of a
second row on the machine) decodes 64 new tokens (EOS disabled)
and, separately, one token (prefill: image encoding and prompt). The summary printed at the end
gives, against plain ``generate`` in the same run (fastest of the rounds, the least disturbed by
other load on the machine):

- per-token decode latency: ``(t(64) - t(1)) / 63``, the cost of one decoding step;
- end-to-end latency per token: ``t(64) / 64`` (the prefill included);
- peak heap memory during the 64-token call, above what was allocated before it (glibc
  ``mallinfo2``, sampled every millisecond; Linux only, else omitted).

The model is LLaVA-shaped: a 4-layer CLIP-like vision tower at 224 px (256 image tokens) and a
6-layer Llama-like language model (hidden 768, vocabulary 32064), random weights, float32 unless
``HALLUGUARD_BENCH_DTYPE`` (or ``--dtype``) says otherwise.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time

import torch
import transformers

import halluguard

try:
    import pytest
except ImportError:  # standalone run (python benchmarks/bench_decoders.py) where pytest is not installed
    pytest = None

NEW_TOKENS = 64
ROUNDS = 3
RESULTS: dict[tuple[str, int, int], float] = {}
DTYPE: list = [torch.float32]  # the measured model's dtype, for the summary
MEMORY: dict[tuple[str, int], float] = {}


def build_model(dtype: str | None = None):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=384,
            intermediate_size=1536,
            num_hidden_layers=4,
            num_attention_heads=6,
            image_size=224,
            patch_size=14,
        ),
        text_config=LlamaConfig(
            vocab_size=32064,
            hidden_size=768,
            intermediate_size=2048,
            num_hidden_layers=6,
            num_attention_heads=12,
            max_position_embeddings=2048,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
        ),
        image_token_index=32000,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlavaForConditionalGeneration(config).eval()
    model.to(getattr(torch, dtype or os.environ.get("HALLUGUARD_BENCH_DTYPE", "float32")))
    model.generation_config.eos_token_id = None  # always decode the full 64 tokens
    model.generation_config.pad_token_id = 0
    return model


def make_inputs(batch: int) -> dict:
    generator = torch.Generator().manual_seed(batch)
    image_tokens = [32000] * (224 // 14) ** 2
    rows = []
    for r in range(batch):
        question = torch.randint(3, 32000, (12 + 3 * r,), generator=generator).tolist()
        rows.append([1, 3148, 1001, 29901] + image_tokens + question + [319, 1799, 9047, 13566, 29901])
    width = max(map(len, rows))
    ids = torch.zeros(batch, width, dtype=torch.long)
    mask = torch.zeros(batch, width, dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, width - len(row) :] = torch.tensor(row)
        mask[r, width - len(row) :] = 1
    pixels = torch.randn(batch, 3, 224, 224, generator=generator)
    return {"input_ids": ids, "attention_mask": mask, "pixel_values": pixels}


def generate_fn(model, execution: str, batch: int, new_tokens: int):
    inputs = make_inputs(batch)
    inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    runner = model if execution == "plain" else halluguard.guard(model, "vcd", seed=0, execution=execution)

    def run():
        return runner.generate(**inputs, max_new_tokens=new_tokens, do_sample=False)

    return run


class HeapPeak:
    """Peak of glibc's allocated bytes (``mallinfo2``) while the block runs, sampled every millisecond."""

    def __init__(self):
        name = ctypes.util.find_library("c")
        self.libc = ctypes.CDLL(name) if name else None
        if self.libc is not None and not hasattr(self.libc, "mallinfo2"):
            self.libc = None

    class _Info(ctypes.Structure):
        _fields_ = [
            (n, ctypes.c_size_t)
            for n in (
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            )
        ]

    def allocated(self) -> int:
        self.libc.mallinfo2.restype = self._Info
        info = self.libc.mallinfo2()
        return info.uordblks + info.hblkhd

    def measure(self, fn) -> float | None:
        if self.libc is None:
            fn()
            return None
        base = self.allocated()
        peak = [base]
        done = threading.Event()

        def poll():
            while not done.is_set():
                peak[0] = max(peak[0], self.allocated())
                time.sleep(0.001)

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        try:
            fn()
        finally:
            done.set()
            thread.join()
        return (peak[0] - base) / 2**20


def summary() -> str:
    """The table of ratios against plain generate, from ``RESULTS`` and ``MEMORY``."""
    lines = [
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{torch.get_num_threads()} threads, {str(DTYPE[0]).replace('torch.', '')}",
        "| batch | execution | decode ms/token | x plain | end-to-end ms/token | x plain | peak heap MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for batch in (1, 4):
        plain_step = (RESULTS[("plain", batch, NEW_TOKENS)] - RESULTS[("plain", batch, 1)]) / (NEW_TOKENS - 1)
        plain_total = RESULTS[("plain", batch, NEW_TOKENS)] / NEW_TOKENS
        for execution in ("plain", "batched", "sequential"):
            step = (RESULTS[(execution, batch, NEW_TOKENS)] - RESULTS[(execution, batch, 1)]) / (
                NEW_TOKENS - 1
            )
            total = RESULTS[(execution, batch, NEW_TOKENS)] / NEW_TOKENS
            memory = MEMORY.get((execution, batch))
            lines.append(
                f"| {batch} | {execution} | {step * 1e3:.1f} | {step / plain_step:.2f} | {total * 1e3:.1f} | "
                f"{total / plain_total:.2f} | {'n/a' if memory is None else f'{memory:.0f}'} |"
            )
    if ("plain", 2, NEW_TOKENS) in RESULTS:
        two = (RESULTS[("plain", 2, NEW_TOKENS)] - RESULTS[("plain", 2, 1)]) / (NEW_TOKENS - 1)
        one = (RESULTS[("plain", 1, NEW_TOKENS)] - RESULTS[("plain", 1, 1)]) / (NEW_TOKENS - 1)
        lines.append(f"floor: plain generate on 2 rows costs {two / one:.2f}x its cost on 1 row on this machine "
                     "(a second row, whatever computes it)")
    return "\n".join(lines)


if pytest is not None:

    @pytest.fixture(scope="module")
    def model():
        model = build_model()
        DTYPE[0] = model.dtype
        return model

    @pytest.mark.parametrize("batch", [1, 2, 4])
    @pytest.mark.parametrize("execution", ["plain", "batched", "sequential"])
    @pytest.mark.parametrize("new_tokens", [1, NEW_TOKENS])
    def test_generate(benchmark, model, execution, batch, new_tokens):
        if batch == 2 and execution != "plain":
            pytest.skip("batch 2 is measured for plain generate only (the floor of a second row)")
        fn = generate_fn(model, execution, batch, new_tokens)
        benchmark.group = f"batch {batch}, {new_tokens} new token(s)"
        benchmark.extra_info.update(execution=execution, batch=batch, new_tokens=new_tokens)
        with torch.no_grad():
            benchmark.pedantic(
                fn, rounds=ROUNDS if new_tokens > 1 else ROUNDS + 2, iterations=1, warmup_rounds=1
            )
        RESULTS[(execution, batch, new_tokens)] = benchmark.stats.stats.min  # least disturbed by other load
        if new_tokens == NEW_TOKENS:
            MEMORY[(execution, batch)] = HeapPeak().measure(fn)

    def test_summary():
        """Print the ratios against plain generate (needs the benchmarks above, in the same run)."""
        if len(RESULTS) < 12:
            pytest.skip("run the whole module to get the summary")
        print("\n" + summary())


def main(argv=None) -> int:
    """Measure every configuration without pytest-benchmark (fastest of ``--rounds``) and print the table."""
    import argparse

    parser = argparse.ArgumentParser(description="CPU cost of guarded generate (VCD) against plain generate")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads [default: torch's]")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--dtype", default=None, help="float32 (default) or bfloat16")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = build_model(args.dtype)
    DTYPE[0] = model.dtype
    with torch.no_grad():
        for batch in (1, 2, 4):
            for execution in ("plain",) if batch == 2 else ("plain", "batched", "sequential"):
                for new_tokens in (1, NEW_TOKENS):
                    fn = generate_fn(model, execution, batch, new_tokens)
                    fn()
                    best = float("inf")
                    for _ in range(args.rounds if new_tokens > 1 else args.rounds + 2):
                        start = time.perf_counter()
                        fn()
                        best = min(best, time.perf_counter() - start)
                    RESULTS[(execution, batch, new_tokens)] = best
                    if new_tokens == NEW_TOKENS:
                        MEMORY[(execution, batch)] = HeapPeak().measure(fn)
    print(summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
