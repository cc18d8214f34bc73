"""`halluguard fix` end to end on 2,000 real captions, 1 and 2 worker processes: answers/s and peak RSS.

    python benchmarks/bench_fix_workers.py              # table: workers, seconds, answers/s, peak RSS
    pytest benchmarks/bench_fix_workers.py --benchmark-only

Input: four copies of ``../shared/data/coco500/llava15_greedy.jsonl`` (2,000 LLaVA-1.5 captions, skipped
when absent); detector: the COCO annotations of those images (``annotations:gt_objects.json``,
``--detector-labels coco``), so the text stages (spaCy parse, claims, verify, rewrite) are the cost.
Each run is a fresh process, as a user's ``fix`` is: the seconds include imports and loading spaCy.
Targets: 2 workers at least ``SCALING`` times one worker's answers/s in the same run, and at least
``FLOOR`` answers/s. The issue asked for 200 answers/s on 2 cores: one answer costs 10-11 ms of CPU here
(the spaCy parse alone about 7 ms), so two cores top out near 200/s and this host's speed drifts by
20 %; measured 162-194/s in quiet spells (``benchmarks/RESULTS.md``). Peak RSS: the parent's own
(VmHWM) and the largest worker's (their pages shared with the parent are counted in both).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco500"
COPIES = 4
#: 2 workers against 1 in the same run (the single process also imports torch through thinc)
SCALING = 1.8
#: answers/s with 2 workers, well below what a quiet 2-core host gives (162-194)
FLOOR = 150.0

RUN = """
import json, resource, sys
from halluguard.pipeline import fix
summary = fix(sys.argv[1], sys.argv[2], detector="annotations:" + sys.argv[3],
              options={"detector_labels": "coco"}, workers=int(sys.argv[4]))
own = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"records": summary.records, "corrected": summary.corrected, "parent_kb": own,
                  "worker_kb": worker}))
"""


def make_input(folder: Path) -> Path:
    path = folder / f"llava15_greedy_x{COPIES}.jsonl"
    path.write_text((DATA / "llava15_greedy.jsonl").read_text() * COPIES)
    return path


def run_fix(source: Path, workers: int) -> dict:
    """One ``fix`` in a fresh interpreter: seconds (wall, start to exit), answers/s, peak RSS in MB."""
    out = source.with_name(f"out_{workers}.jsonl")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RUN, str(source), str(out), str(DATA / "gt_objects.json"),
                           str(workers)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"fix with {workers} workers failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {"workers": workers, "seconds": seconds, "answers_per_s": figures["records"] / seconds,
            "records": figures["records"], "corrected": figures["corrected"], "output": out,
            "parent_mb": figures["parent_kb"] / 1024, "worker_mb": figures["worker_kb"] / 1024}


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if not (DATA / "llava15_greedy.jsonl").exists():
        raise SystemExit(f"{DATA} is not present")
    with tempfile.TemporaryDirectory() as folder:
        source = make_input(Path(folder))
        print(f"{COPIES * 500} captions; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
        print(f"{'workers':>7}  {'seconds':>7}  {'answers/s':>9}  {'parent MB':>9}  {'worker MB':>9}")
        for n in args.workers:
            best = min((run_fix(source, n) for _ in range(args.rounds)), key=lambda r: r["seconds"])
            print(f"{n:>7}  {best['seconds']:>7.1f}  {best['answers_per_s']:>9.0f}  "
                  f"{best['parent_mb']:>9.0f}  {best['worker_mb']:>9.0f}")


# ---------------------------------------------------------------------- pytest-benchmark


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    if not (DATA / "llava15_greedy.jsonl").exists():
        pytest.skip("../shared/data/coco500 is not present")
    pytest.importorskip("spacy")
    return make_input(tmp_path_factory.mktemp("fix_workers"))


def test_fix_two_workers_scale(benchmark, source) -> None:
    one = run_fix(source, 1)
    two = benchmark.pedantic(run_fix, args=(source, 2), rounds=1, iterations=1)
    assert one["output"].read_bytes() == two["output"].read_bytes()
    assert two["records"] == COPIES * 500
    benchmark.extra_info.update({
        "answers_per_s_1_worker": round(one["answers_per_s"], 1),
        "answers_per_s_2_workers": round(two["answers_per_s"], 1),
        "ratio_2_to_1": round(two["answers_per_s"] / one["answers_per_s"], 2),
        "peak_rss_mb_1_worker": round(one["parent_mb"], 1),
        "peak_rss_mb_2_workers_parent": round(two["parent_mb"], 1),
        "peak_rss_mb_2_workers_largest_worker": round(two["worker_mb"], 1),
        "load_average": round(os.getloadavg()[0], 1),
    })
    ratio = two["answers_per_s"] / one["answers_per_s"]
    assert ratio >= SCALING, f"2 workers {two['answers_per_s']:.0f}/s, 1 worker {one['answers_per_s']:.0f}/s"
    assert two["answers_per_s"] >= FLOOR, f"{two['answers_per_s']:.0f} answers/s with 2 workers"


if __name__ == "__main__":
    main()
