"""The `fix` plumbing alone (pass-through corrector): records/s and peak memory on 100,000 lines.

    pytest benchmarks/bench_pipeline.py --benchmark-only

Input: 100,000 lines, 1 % of them malformed. Checks input = output + errors and peak RSS < 300 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

N_LINES = 100_000


@pytest.fixture(scope="module")
def big_input(tmp_path_factory):
    path = tmp_path_factory.mktemp("plumbing") / "answers.jsonl"
    with open(path, "w") as handle:
        for i in range(N_LINES):
            if i % 100 == 42:
                handle.write('{"id": %d, "answer": oops}\n' % i)
            else:
                record = {"id": i, "image_id": i % 500, "answer": "A man rides a horse next to a dog. " * 3}
                handle.write(json.dumps(record) + "\n")
    return path


def test_plumbing_records_per_second(benchmark, big_input, tmp_path):
    from halluguard.pipeline import fix

    out = tmp_path / "out.jsonl"
    summary = benchmark.pedantic(lambda: fix(big_input, out), rounds=3, iterations=1)
    assert summary.records == N_LINES
    assert summary.written + summary.errors == N_LINES and summary.errors == N_LINES // 100
    benchmark.extra_info["records_per_s"] = round(N_LINES / benchmark.stats.stats.median)


#: the peak resident memory of the process itself: Linux's VmHWM belongs to the process's own memory
#: map (reset by exec), while ru_maxrss also carries the peak of the process it was forked from (a
#: pytest process of gigabytes when the whole suite runs)
PEAK_RSS_KB = (
    "def peak_kb():\n"
    "    try:\n"
    "        for line in open('/proc/self/status'):\n"
    "            if line.startswith('VmHWM:'):\n"
    "                return int(line.split()[1])\n"
    "    except OSError:\n"
    "        pass\n"
    "    import resource\n"
    "    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
)


def test_plumbing_peak_rss(benchmark, big_input, tmp_path):
    code = PEAK_RSS_KB + (
        "import sys, json; from halluguard.pipeline import fix; s = fix(sys.argv[1], sys.argv[2]); "
        "print(json.dumps({'rss_kb': peak_kb(), 'records': s.records, 'written': s.written, 'errors': s.errors}))"
    )

    def run():
        result = subprocess.run([sys.executable, "-c", code, str(big_input), str(tmp_path / "o.jsonl")],
                                capture_output=True, text=True, check=True)
        return json.loads(result.stdout)

    figures = benchmark.pedantic(run, rounds=1, iterations=1)
    assert figures["records"] == figures["written"] + figures["errors"] == N_LINES
    benchmark.extra_info["peak_rss_mb"] = round(figures["rss_kb"] / 1024, 1)
    assert figures["rss_kb"] < 300 * 1024
