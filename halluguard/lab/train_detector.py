"""Train the lab detector: ``python -m halluguard.lab.train_detector --seed S --out DIR``.

A YOLO11n built from ``yolo11n.yaml`` (10 classes, the lab's kinds) and trained from scratch with
ultralytics at 64 px on rendered lab scenes (boxes from the rendered masks). Nothing is downloaded:
ultralytics runs offline, without auto-install and without its AMP check (``amp=False``).

Writes ``OUT/detector.pt`` (the best epoch, optimizer stripped), ``OUT/detector_log.json`` (mAP on the
validation split, time) and keeps the dataset under ``OUT/data`` unless ``--keep-data`` is off.
Reproducible from ``--seed`` on a fixed device and worker count (``deterministic=True``).

>>> parse_args(["--out", "x"]).epochs
20
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from halluguard.lab import world


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m halluguard.lab.train_detector", description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--device", default="cpu", help="'cpu' or a CUDA index such as '0'")
    p.add_argument("--train", type=int, default=8_000, help="training images")
    p.add_argument("--val", type=int, default=500, help="validation images")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--mosaic", type=float, default=0.0, help="mosaic probability (scenes already hold 1-4 objects)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--hours", type=float, default=None,
                   help="train for this long instead (ultralytics re-plans the epochs after the first; logged)")
    p.add_argument("--keep-data", action="store_true", help="keep the rendered dataset under OUT/data")
    return p.parse_args(argv)


def write_dataset(root: Path, seed: int, n_train: int, n_val: int, chunk: int = 1000) -> Path:
    """Render the YOLO dataset (PNG + label files) under ``root``; returns its ``data.yaml``."""
    for split, n, name in (("train", n_train, "train"), ("val", n_val, "val")):
        images, labels = root / "images" / name, root / "labels" / name
        images.mkdir(parents=True, exist_ok=True)
        labels.mkdir(parents=True, exist_ok=True)
        for start in range(0, n, chunk):
            # the validation images mix natural and prior-breaking scenes, like the test split
            share = 0.0 if split == "train" else 0.5
            scenes = world.make_scenes(seed, "det-" + split, min(chunk, n - start), share, start=start)
            pixels, truths = world.render(scenes)
            for scene, pil, gt in zip(scenes, world.to_pil(pixels), truths):
                stem = f"{scene.name}-{start:06d}" if split == "val" else scene.name
                pil.save(images / f"{stem}.png")
                rows = []
                for obj in gt["objects"]:
                    x1, y1, x2, y2 = obj["box"]
                    if x2 <= x1 or y2 <= y1:
                        continue
                    s = world.SIZE
                    rows.append(f"{world.KINDS.index(obj['kind'])} {(x1 + x2) / 2 / s:.5f} {(y1 + y2) / 2 / s:.5f} "
                                f"{(x2 - x1) / s:.5f} {(y2 - y1) / s:.5f}")
                (labels / f"{stem}.txt").write_text("\n".join(rows) + ("\n" if rows else ""))
    yaml = root / "data.yaml"
    names = "\n".join(f"  {i}: {k}" for i, k in enumerate(world.KINDS))
    yaml.write_text(f"path: {root.resolve()}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return yaml


def scrub_checkpoint(path: Path) -> None:
    """Drop the machine's paths from an ultralytics checkpoint (its git record, folders in ``train_args``)."""
    import torch

    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    checkpoint.pop("git", None)
    tables = [checkpoint.get("train_args")] + [getattr(checkpoint.get(k), "args", None) for k in ("model", "ema")]
    for table in tables:
        for key in ("data", "project", "save_dir"):
            if isinstance(table, dict) and isinstance(table.get(key), str):
                table[key] = Path(table[key]).name
    torch.save(checkpoint, path)


def train(args: argparse.Namespace) -> dict[str, Any]:
    from halluguard.detectors.yolo import import_yolo

    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data_root = args.out / "data"
    yaml = write_dataset(data_root, args.seed, args.train, args.val)
    data_seconds = time.perf_counter() - started
    YOLO = import_yolo()
    model = YOLO("yolo11n.yaml", task="detect")
    t0 = time.perf_counter()
    model.train(
        data=str(yaml), epochs=args.epochs, imgsz=world.SIZE, batch=args.batch, device=args.device,
        workers=args.workers, seed=args.seed, deterministic=True, amp=False, pretrained=False, plots=False,
        project=str(args.out.resolve()), name="run", exist_ok=True, verbose=False, cache="ram",
        scale=0.2, mosaic=args.mosaic, close_mosaic=max(1, args.epochs // 4), hsv_h=0.0, patience=1000,
        **({"time": args.hours} if args.hours else {}),
    )
    epochs_run = model.trainer.epoch + 1
    train_seconds = time.perf_counter() - t0
    best = args.out / "run" / "weights" / "best.pt"
    shutil.copy(best, args.out / "detector.pt")
    scrub_checkpoint(args.out / "detector.pt")
    trained = YOLO(str(args.out / "detector.pt"))
    metrics = trained.val(data=str(yaml), imgsz=world.SIZE, batch=args.batch, device=args.device, workers=0,
                          plots=False, verbose=False, project=str(args.out.resolve()), name="val", exist_ok=True)
    log = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "map50": float(metrics.box.map50), "map50_95": float(metrics.box.map),
        "per_class_map50_95": dict(zip(world.KINDS, (float(x) for x in metrics.box.maps))),
        "epochs_run": epochs_run, "data_seconds": round(data_seconds, 1), "train_seconds": round(train_seconds, 1),
        "size_bytes": os.path.getsize(args.out / "detector.pt"),
    }
    (args.out / "detector_log.json").write_text(json.dumps(log, indent=1))
    shutil.rmtree(args.out / "run", ignore_errors=True)
    shutil.rmtree(args.out / "val", ignore_errors=True)
    if not args.keep_data:
        shutil.rmtree(data_root, ignore_errors=True)
    return log


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log = train(args)
    print(json.dumps({k: v for k, v in log.items() if k in ("map50", "map50_95", "train_seconds", "size_bytes")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
