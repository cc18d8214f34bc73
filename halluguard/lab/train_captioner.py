"""Train the lab captioner: ``python -m halluguard.lab.train_captioner --seed S --out DIR``.

Two stages, as the feasibility run found necessary (captions alone do not teach a tiny model to see):

1. **Vision**: the CLIP tower learns per-patch labels (which kinds, colours and small objects cover each
   8x8 patch) with a linear head, from rendered scenes with fresh noise at every step.
2. **Captions**: the whole LLaVA learns the template captions (loss on the caption tokens), the vision
   tower at 0.2x the learning rate and the patch loss kept as an auxiliary term. A share of the batch
   (``--text-only``, 15 %) shows the instruction without the image, as a language model is pretrained on
   text: the no-image branch of VDD/M3ID is then the model's own language prior, not noise.

Training scenes are a pool of ``--pool`` natural scenes (``world.make_scenes(seed, "train", ...)``);
each step renders a batch of them with new pixel noise from a seeded ``torch.Generator``. Every random
choice comes from ``--seed``; on CPU, with ``--threads`` fixed, a run is bit-for-bit reproducible (on a
GPU, deterministic algorithms are requested and the attention runs in eager mode).

The output folder holds the checkpoint (``save_pretrained`` + processor, fp16 unless ``--dtype``),
``train_log.json`` (losses, times, validation figures) and nothing else.

>>> args = parse_args(["--seed", "1", "--out", "x", "--stage1-steps", "2"])
>>> args.seed, args.stage1_steps, args.lr
(1, 2, 0.001)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from halluguard.lab import captioner, world

N_PATCH_LABELS = len(world.KINDS) + len(world.COLOURS) + 1
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m halluguard.lab.train_captioner", description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (fixed for reproducibility)")
    p.add_argument("--pool", type=int, default=100_000, help="training scenes (rendered with fresh noise each step)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--stage1-steps", type=int, default=1500)
    p.add_argument("--stage2-steps", type=int, default=3000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--vision-lr-scale", type=float, default=0.2)
    p.add_argument("--aux-weight", type=float, default=0.3, help="patch loss weight in stage 2")
    p.add_argument("--text-only", type=float, default=0.15, help="share of stage-2 rows without the image")
    p.add_argument("--val", type=int, default=400, help="validation images (half prior-breaking)")
    p.add_argument("--dtype", default="float16", help="dtype of the saved checkpoint")
    p.add_argument("--seconds", type=float, default=None,
                   help="choose the step counts from a timing of each stage to train about this long (logged)")
    p.add_argument("--stage1-share", type=float, default=0.3, help="share of --seconds for stage 1")
    p.add_argument("--save-state", action="store_true", help="also write the fp32 state dict (state.pt)")
    p.add_argument("--log-every", type=int, default=100)
    return p.parse_args(argv)


class Batches:
    """Rendered training batches from a pool of scenes: pixels, patch labels and token rows."""

    def __init__(self, seed: int, pool: int, tokenizer, device: Any):
        import torch

        self.device = torch.device(device)
        self.rng = np.random.default_rng([seed, 1])
        self.noise = torch.Generator(device=self.device).manual_seed(seed + 1)
        scenes = world.make_scenes(seed, "train", pool)
        self.packed = {k: torch.as_tensor(v, device=self.device) for k, v in world.pack(scenes).items()}
        captions = [world.caption(s) for s in scenes]
        ids = tokenizer(captions, add_special_tokens=False)["input_ids"]
        self.cap_len = torch.tensor([len(x) for x in ids], device=self.device)
        width = int(self.cap_len.max())
        rows = np.full((len(ids), width), tokenizer.pad_token_id, np.int64)
        for i, x in enumerate(ids):
            rows[i, : len(x)] = x
        self.cap = torch.as_tensor(rows, device=self.device)
        self.pad, self.eos, self.bos = tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id
        self.image_token = tokenizer.convert_tokens_to_ids(captioner.IMAGE_TOKEN)
        self.instruction = tokenizer(captioner.INSTRUCTION, add_special_tokens=False)["input_ids"]
        self.mean = torch.tensor(CLIP_MEAN, device=self.device)[None, :, None, None]
        self.std = torch.tensor(CLIP_STD, device=self.device)[None, :, None, None]
        self.pool = pool

    def images(self, idx):
        """Normalised pixel values ``(B, 3, 64, 64)`` and patch labels ``(B, 64, N_PATCH_LABELS)``."""
        import torch

        p = {k: v[idx] for k, v in self.packed.items()}
        noise = torch.randn(len(idx), 3, world.SIZE, world.SIZE, generator=self.noise, device=self.device)
        image, coverage = world.render_packed(p, noise, self.device)
        return (image - self.mean) / self.std, patch_labels(coverage, p)

    def tokens(self, idx, with_image):
        """``input_ids``, ``attention_mask``, ``labels`` for rows of caption ``idx`` (image rows or text-only)."""
        import torch

        b = len(idx)
        prefix = [self.bos] + ([self.image_token] * captioner.IMAGE_TOKENS if with_image else []) + self.instruction
        width = len(prefix) + self.cap.shape[1] + 1
        ids = torch.full((b, width), self.pad, device=self.device)
        ids[:, : len(prefix)] = torch.tensor(prefix, device=self.device)
        ids[:, len(prefix): len(prefix) + self.cap.shape[1]] = self.cap[idx]
        ends = len(prefix) + self.cap_len[idx]
        ids[torch.arange(b, device=self.device), ends] = self.eos
        pos = torch.arange(width, device=self.device)[None]
        mask = (pos <= ends[:, None]).long()
        labels = torch.where((pos >= len(prefix)) & (mask > 0), ids, torch.full_like(ids, -100))
        return ids, mask, labels

    def reset(self, seed: int) -> None:
        """Restart the batch order and the noise stream (as right after construction)."""
        self.rng = np.random.default_rng([seed, 1])
        self.noise.manual_seed(seed + 1)

    def sample(self, n: int):
        import torch

        return torch.as_tensor(self.rng.integers(0, self.pool, size=n), device=self.device)


def patch_labels(coverage, packed):
    """Per 8x8 patch: kinds, colours and "small" of the objects covering at least 4 of its pixels."""
    import torch

    b, slots = coverage.shape[:2]
    g = world.SIZE // captioner.PATCH
    per_patch = coverage.reshape(b, slots, g, captioner.PATCH, g, captioner.PATCH).sum(dim=(3, 5))
    on = (per_patch >= 4).float().reshape(b, slots, g * g) * packed["present"].float()[..., None]
    kinds = torch.nn.functional.one_hot(packed["kind"], len(world.KINDS)).float()
    colours = torch.nn.functional.one_hot(packed["colour_id"], len(world.COLOURS)).float()
    small = (packed["geom"][..., 2] <= world.SMALL_MAX).float()[..., None]
    attrs = torch.cat([kinds, colours, small], dim=-1)  # (b, slots, 18)
    return torch.einsum("bsp,bsa->bpa", on, attrs).clamp(max=1)


def schedule(step: int, total: int, warmup: int) -> float:
    """Linear warm-up then cosine decay to 5 % of the peak.

    >>> schedule(0, 100, 10), round(schedule(100, 100, 10), 2)
    (0.1, 0.05)
    """
    if step < warmup:
        return (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Run both stages; returns the log (also written to ``OUT/train_log.json``)."""
    import torch

    device = torch.device(args.device)
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cuda.matmul.allow_tf32 = True
    torch.set_num_threads(args.threads)
    tokenizer = captioner.build_tokenizer()
    processor = captioner.build_processor(tokenizer)
    config = captioner.build_config(tokenizer)
    config._attn_implementation = "eager"
    config.text_config._attn_implementation = "eager"
    config.vision_config._attn_implementation = "eager"
    model = captioner.build_model(args.seed, config).to(device).train()
    head_gen = torch.Generator().manual_seed(args.seed + 2)
    head = torch.nn.Linear(config.vision_config.hidden_size, N_PATCH_LABELS)
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=head_gen) * 0.02)
        head.bias.zero_()
    head = head.to(device)
    log: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "stage1": [], "stage2": []}
    started = time.perf_counter()
    data = Batches(args.seed, args.pool, tokenizer, device)
    log["data_seconds"] = round(time.perf_counter() - started, 1)
    bce = torch.nn.BCEWithLogitsLoss()
    vision = model.model.vision_tower
    captured: dict[str, Any] = {}
    hook = vision.register_forward_hook(lambda m, i, o: captured.__setitem__("h", o.hidden_states[-1][:, 1:]))

    def stage1_step(opt) -> Any:
        pixels, labels = data.images(data.sample(args.batch))
        model.model.vision_tower(pixels, output_hidden_states=True, return_dict=True)
        loss = bce(head(captured["h"]), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vision.parameters(), 1.0)
        opt.step()
        return loss

    n_text = int(round(args.batch * args.text_only))

    def stage2_step(opt) -> tuple[Any, Any]:
        idx = data.sample(args.batch)
        img_idx, txt_idx = idx[n_text:], idx[:n_text]
        pixels, patch = data.images(img_idx)
        ids, mask, labels = data.tokens(img_idx, with_image=True)
        loss = model(input_ids=ids, attention_mask=mask, pixel_values=pixels, labels=labels).loss
        aux = bce(head(captured["h"]), patch)
        total = loss + args.aux_weight * aux
        if n_text:
            ids, mask, labels = data.tokens(txt_idx, with_image=False)
            total = total + model(input_ids=ids, attention_mask=mask, labels=labels).loss * (n_text / args.batch)
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss, aux

    def stage1_optimizer():
        return torch.optim.AdamW(list(vision.parameters()) + list(head.parameters()), lr=2 * args.lr,
                                 weight_decay=0.01)

    def stage2_optimizer():
        vision_ids = {id(p) for p in vision.parameters()}
        rest = [p for p in model.parameters() if id(p) not in vision_ids]
        groups = [{"params": list(vision.parameters()), "scale": args.vision_lr_scale},
                  {"params": rest + list(head.parameters()), "scale": 1.0}]
        return torch.optim.AdamW(groups, lr=args.lr, weight_decay=0.01)

    if args.seconds:
        # time a few steps of each stage on the real model, then start over from the same state
        saved = ({k: v.clone() for k, v in model.state_dict().items()}, {k: v.clone() for k, v in head.state_dict().items()})
        per_step = []
        for make, step_fn in ((stage1_optimizer, stage1_step), (stage2_optimizer, stage2_step)):
            opt = make()
            for group in opt.param_groups:
                group["lr"] = 0.0
            for i in range(13):
                if i == 3:
                    _sync(device)
                    t = time.perf_counter()
                step_fn(opt)
            _sync(device)
            per_step.append((time.perf_counter() - t) / 10)
        model.load_state_dict(saved[0])
        head.load_state_dict(saved[1])
        data.reset(args.seed)
        budget = args.seconds * 0.92
        args.stage1_steps = max(10, int(budget * args.stage1_share / per_step[0]))
        args.stage2_steps = max(10, int(budget * (1 - args.stage1_share) / per_step[1]))
        log["calibration"] = {"seconds_per_step": [round(x, 4) for x in per_step],
                              "stage1_steps": args.stage1_steps, "stage2_steps": args.stage2_steps}
        print(json.dumps(log["calibration"]), flush=True)

    # stage 1: the vision tower on patch labels
    opt = stage1_optimizer()
    t1 = time.perf_counter()
    for step in range(args.stage1_steps):
        for group in opt.param_groups:
            group["lr"] = 2 * args.lr * schedule(step, args.stage1_steps, 100)
        loss = stage1_step(opt)
        if step % args.log_every == 0 or step == args.stage1_steps - 1:
            log["stage1"].append([step, round(loss.item(), 4)])
    log["stage1_seconds"] = round(time.perf_counter() - t1, 1)

    # stage 2: captions, vision at a reduced learning rate, patch loss kept
    opt = stage2_optimizer()
    t2 = time.perf_counter()
    for step in range(args.stage2_steps):
        for group in opt.param_groups:
            group["lr"] = args.lr * group["scale"] * schedule(step, args.stage2_steps, 200)
        loss, aux = stage2_step(opt)
        if step % args.log_every == 0 or step == args.stage2_steps - 1:
            log["stage2"].append([step, round(loss.item(), 4), round(aux.item(), 4)])
    hook.remove()
    log["stage2_seconds"] = round(time.perf_counter() - t2, 1)
    log["train_seconds"] = round(time.perf_counter() - started, 1)
    log["args"] = {k: str(v) for k, v in vars(args).items()}

    # validation with the saved checkpoint's own processor, greedy
    model.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    final = captioner.build_model(0, captioner.build_config(tokenizer))
    final.load_state_dict(model.state_dict())
    if args.save_state:
        torch.save({k: v.cpu() for k, v in final.state_dict().items()}, args.out / "state.pt")
    captioner.save(final, processor, args.out, dtype=args.dtype)
    try:
        log["validation"] = validate(args.out, args.seed, args.val, device) if args.val else {}
    except Exception as exc:  # the checkpoint is saved; a failed check is reported, not fatal
        log["validation"] = {"error": repr(exc)}
    log["seconds"] = round(time.perf_counter() - started, 1)
    (args.out / "train_log.json").write_text(json.dumps(log, indent=1))
    return log


def validate(path: Path, seed: int, n: int, device: Any) -> dict[str, Any]:
    """Greedy captions of ``n`` validation scenes (half prior-breaking), scored."""
    import torch

    from halluguard.lab import scoring

    model, processor = captioner.load(path, dtype=torch.float32, device=device)
    scenes = world.make_scenes(seed, "val", n, prior_breaking_share=0.5)
    images, truths = world.render(scenes)
    pil = world.to_pil(images)
    captions: list[str] = []
    for start in range(0, n, 200):
        batch = processor(images=pil[start:start + 200], text=[captioner.PROMPT] * len(pil[start:start + 200]),
                          return_tensors="pt").to(device)
        with torch.no_grad():
            out = model.generate(**batch)
        captions += processor.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    summary = scoring.score(captions, truths).summary(n_resamples=0)
    summary["examples"] = [[t["caption"], c] for t, c in zip(truths[:3] + truths[-3:], captions[:3] + captions[-3:])]
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log = train(args)
    v = log.get("validation", {})
    print(json.dumps({k: (round(x, 2) if isinstance(x, float) else x) for k, x in v.items() if k != "examples"}))
    print(f"trained in {log['train_seconds']} s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
