"""The lab on CPU: captioner and detector throughput, and the whole harness `halluguard demo` runs.

    pytest benchmarks/bench_lab.py --benchmark-only            # about 2 minutes on 2 cores (the demo's lab part: 250 images)
    HALLUGUARD_LAB_FULL=0 pytest benchmarks/bench_lab.py ...   # throughput only

Figures and their meaning: benchmarks/RESULTS.md (the lab).
"""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from halluguard.lab import evaluate  # noqa: E402

N = 500


@pytest.fixture(scope="module")
def data():
    return evaluate.load_data(N)


@pytest.fixture(scope="module")
def captioner():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield evaluate.Captioner()
    torch.set_num_threads(threads)


def _rate(benchmark, n: int, unit: str) -> None:
    benchmark.extra_info[f"{unit}_per_s"] = round(n / benchmark.stats.stats.median, 1)


def test_lab_greedy_captions_per_second(benchmark, captioner, data):
    captions = benchmark.pedantic(lambda: captioner.caption(data.images), rounds=2, iterations=1)
    assert len(captions) == N
    _rate(benchmark, N, "captions")


@pytest.mark.parametrize("method,params", [("vcd", {"noise_step": 500}), ("vdd", {})])
def test_lab_guarded_captions_per_second(benchmark, captioner, data, method, params):
    pytest.importorskip("halluguard.decoders")
    captions = benchmark.pedantic(lambda: captioner.caption(data.images, method, **params), rounds=1, iterations=1)
    assert len(captions) == N
    _rate(benchmark, N, "captions")


def test_lab_detector_images_per_second(benchmark, data):
    pytest.importorskip("ultralytics")
    from halluguard.detectors.yolo import import_yolo

    model = import_yolo()(str(evaluate.DETECTOR), task="detect")
    model.predict(data.images[:8], imgsz=64, device="cpu", verbose=False)
    benchmark.pedantic(lambda: model.predict(data.images, imgsz=64, device="cpu", verbose=False),
                       rounds=2, iterations=1)
    _rate(benchmark, N, "images")


#: what ``halluguard demo`` promises for its lab part (the whole demo also loads the models and writes files)
DEMO_BUDGET_S = 90


@pytest.mark.skipif(os.environ.get("HALLUGUARD_LAB_FULL", "1") == "0", reason="HALLUGUARD_LAB_FULL=0")
def test_run_lab_as_the_demo_runs_it(benchmark, tmp_path):
    """What ``halluguard demo`` measures on the lab: every method on 250 images, within the demo's budget."""
    pytest.importorskip("halluguard.decoders")
    from halluguard.demo import LAB_DEMO

    results = benchmark.pedantic(lambda: evaluate.run_lab(**LAB_DEMO, threads=2), rounds=1, iterations=1)
    paths = results.write(tmp_path)
    assert paths["png"].stat().st_size > 10_000
    assert results.meta["n_images"] == LAB_DEMO["n_images"] and set(results.meta["methods"]) == set(evaluate.METHODS)
    assert {r["stage"] for r in results.rows} == set(evaluate.STAGES)
    greedy, fixed = results.row("greedy"), results.row("greedy", "fixed")
    assert fixed["chair_i"] < greedy["chair_i"]
    benchmark.extra_info["seconds"] = results.meta["seconds"]
    benchmark.extra_info["dtype"] = results.meta["dtype"]
    benchmark.extra_info["greedy"] = {k: round(greedy[k], 1) for k in ("chair_i", "recall", "prior", "control")}
    assert results.meta["seconds"]["total"] < DEMO_BUDGET_S, (
        f"the demo's lab part took {results.meta['seconds']['total']:.0f} s in {results.meta['dtype']}, "
        f"over its {DEMO_BUDGET_S} s budget: lower LAB_DEMO['n_images'] in halluguard/demo.py")
