"""GPU cost of guarded ``generate`` on a LLaVA-1.5-7B-shaped model (random weights, bfloat16).

    PYTHONPATH=. python benchmarks/gpu_llava7b.py [--new-tokens 128] [--rounds 3] [--methods vcd,vdd]

Builds the model from its config directly on the GPU (CLIP ViT-L/14 at 336 px: 576 image tokens;
a Llama-2-7B language model), then times batch-1 ``generate`` with 1 and with N new tokens for
plain ``generate`` and for the guard in its two executions. Per-token decode latency is
``(t(N) - t(1)) / (N - 1)``; end-to-end latency per token is ``t(N) / N``. It first checks, on a
tiny float32 model on the same GPU, that batched and sequential decode the same tokens and that
neither the CPU nor the CUDA global RNG moves.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch


def tiny_check(device: str) -> str:
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    import halluguard

    torch.manual_seed(0)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=28,
            patch_size=14,
        ),
        text_config=LlamaConfig(
            vocab_size=256,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
        ),
        image_token_index=255,
    )
    model = LlavaForConditionalGeneration(config).to(device).eval()
    model.generation_config.suppress_tokens = [255]
    ids = torch.tensor([[0, 1, 5, 255, 255, 255, 255, 7], [1, 9, 5, 255, 255, 255, 255, 8]], device=device)
    mask = (ids != 0).long()
    mask[1, 0] = 1
    pixels = torch.randn(2, 3, 28, 28, device=device)
    cpu_state, cuda_state = torch.random.get_rng_state(), torch.cuda.get_rng_state(device)
    outs = {}
    for method in ("vcd", "vdd", "m3id"):
        for execution in ("batched", "sequential"):
            guarded = halluguard.guard(model, method, seed=1, execution=execution)
            outs[method, execution] = guarded.generate(
                input_ids=ids,
                attention_mask=mask,
                pixel_values=pixels,
                max_new_tokens=12,
                do_sample=True,
                top_k=0,
            )
    same = all(torch.equal(outs[m, "batched"], outs[m, "sequential"]) for m in ("vcd", "vdd", "m3id"))
    rng_kept = torch.equal(cpu_state, torch.random.get_rng_state()) and torch.equal(
        cuda_state, torch.cuda.get_rng_state(device)
    )
    return f"tiny float32 check on {device}: batched == sequential: {same}; global RNG untouched: {rng_kept}"


def build_llava7b(device: str):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            image_size=336,
            patch_size=14,
            projection_dim=768,
            hidden_act="quick_gelu",
        ),
        text_config=LlamaConfig(
            vocab_size=32064,
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            max_position_embeddings=4096,
            rms_norm_eps=1e-5,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
        ),
        image_token_index=32000,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = LlavaForConditionalGeneration._from_config(config, dtype=torch.bfloat16).eval()
    model.generation_config.eos_token_id = None  # always decode the full N tokens
    model.generation_config.pad_token_id = 0
    return model


def inputs_7b(device: str) -> dict:
    generator = torch.Generator().manual_seed(0)
    question = torch.randint(3, 32000, (24,), generator=generator).tolist()
    ids = [1, 3148, 1001, 29901] + [32000] * 576 + question + [319, 1799, 9047, 13566, 29901]
    return {
        "input_ids": torch.tensor([ids], device=device),
        "pixel_values": torch.randn(1, 3, 336, 336, generator=generator).to(device, torch.bfloat16),
    }


def timed(fn, rounds: int) -> float:
    fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(rounds):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--methods", default="vcd", help="comma-separated: vcd, vdd, m3id")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 1

    import transformers

    import halluguard

    print(
        f"{torch.cuda.get_device_name(args.device)}; torch {torch.__version__}; "
        f"transformers {transformers.__version__}"
    )
    print(tiny_check(args.device))
    started = time.perf_counter()
    model = build_llava7b(args.device)
    params = sum(p.numel() for p in model.parameters()) / 1e9
    print(
        f"LLaVA-1.5-7B-shaped model: {params:.2f} B parameters, bfloat16, "
        f"built in {time.perf_counter() - started:.0f} s"
    )
    inputs = inputs_7b(args.device)
    n = args.new_tokens

    def runner(method: str, execution: str, new_tokens: int):
        target = model if method == "none" else halluguard.guard(model, method, seed=0, execution=execution)
        return lambda: target.generate(**inputs, max_new_tokens=new_tokens, do_sample=False)

    rows = [("none", "plain")] + [(m, e) for m in args.methods.split(",") for e in ("batched", "sequential")]
    results = {}
    with torch.no_grad():
        for method, execution in rows:
            prefill = timed(runner(method, execution, 1), args.rounds)
            torch.cuda.reset_peak_memory_stats(args.device)
            before = torch.cuda.memory_allocated(args.device)
            full = timed(runner(method, execution, n), args.rounds)
            peak = (torch.cuda.max_memory_allocated(args.device) - before) / 2**20
            results[method, execution] = ((full - prefill) / (n - 1), full / n, peak)
    plain_step, plain_total, _ = results["none", "plain"]
    print(
        f"\nbatch 1, {n} new tokens, {len(inputs['input_ids'][0])}-token prompt "
        f"(fastest of {args.rounds} rounds)"
    )
    print(
        "| method | execution | decode ms/token | x plain | end-to-end ms/token | x plain | peak extra MiB |"
    )
    print("|---|---|---|---|---|---|---|")
    for (method, execution), (step, total, peak) in results.items():
        print(
            f"| {method} | {execution} | {step * 1e3:.2f} | {step / plain_step:.2f} | {total * 1e3:.2f} | "
            f"{total / plain_total:.2f} | {peak:.0f} |"
        )
    with torch.no_grad():
        outs = {e: runner(args.methods.split(",")[0], e, 32)() for e in ("batched", "sequential")}
    agree = (outs["batched"] == outs["sequential"]).float().mean().item()
    print(
        f"\nbatched vs sequential, 32 tokens in bfloat16: {agree:.0%} of positions agree "
        "(bfloat16 matmuls over 2 rows and 1 row may round differently)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
