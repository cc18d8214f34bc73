"""`fix` with worker processes: the same bytes as one process, in order, resumable, errors per record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from halluguard.pipeline import fix, parallel_by_default, resolve_workers
from halluguard.records import Correction, Edit, RecordError

EXAMPLES = Path(__file__).resolve().parents[1] / "halluguard" / "examples"


class Tagging:
    """A CPU-only corrector: upper-cases each answer and names the process that did it (in ``edits``
    only when asked), fails the record with id ``bad`` and crashes the run on id ``crash``."""

    def __init__(self, crash: int | None = None, pids: bool = False):
        self.crash, self.pids = crash, pids

    def correct(self, answers, images):
        out: list[Correction | RecordError] = []
        for answer in answers:
            if answer.id == self.crash:
                raise RuntimeError(f"crashed on record {answer.id}")
            if answer.id == "bad":
                out.append(RecordError("this record is bad", "answer"))
                continue
            edits = [Edit(0, 0, "", "", f"pid {os.getpid()}")] if self.pids else []
            out.append(Correction(corrected=answer.text.upper(), edits=edits))
        return out


def _input(path: Path, n: int) -> Path:
    with open(path, "w") as handle:
        for i in range(n):
            record = {"id": "bad" if i == n // 2 else i, "answer": f"answer number {i}", "image_id": i % 7}
            handle.write(json.dumps(record) + "\n" + ("\n" if i % 50 == 0 else ""))
            if i == n // 3:
                handle.write('{"id": "broken json\n')
    return path


def test_two_workers_write_the_same_bytes_in_the_same_order(tmp_path) -> None:
    source = _input(tmp_path / "in.jsonl", 1000)
    one = fix(source, tmp_path / "one.jsonl", corrector=Tagging(), chunk_size=64, workers=1)
    two = fix(source, tmp_path / "two.jsonl", corrector=Tagging(), chunk_size=64, workers=2)
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
    errors = (tmp_path / "one.errors.jsonl").read_bytes()
    assert errors == (tmp_path / "two.errors.jsonl").read_bytes().replace(b"two.jsonl", b"one.jsonl")
    assert (one.records, one.written, one.errors) == (two.records, two.written, two.errors) == (1001, 999, 2)
    ids = [json.loads(line)["id"] for line in (tmp_path / "two.jsonl").read_text().splitlines()]
    assert ids == [i for i in range(1000) if i != 500]
    reasons = [json.loads(line)["reason"] for line in errors.decode().splitlines()]
    assert reasons[0].startswith("malformed JSON") and reasons[1] == "this record is bad"


def test_the_work_is_shared_by_the_workers(tmp_path) -> None:
    source = _input(tmp_path / "in.jsonl", 600)
    fix(source, tmp_path / "out.jsonl", corrector=Tagging(pids=True), chunk_size=32, workers=2)
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    pids = {int(record["edits"][0]["reason"][4:]) for record in records}
    assert len(pids) == 2 and os.getpid() not in pids


def test_a_crash_keeps_the_checkpoint_and_a_resume_with_two_workers_is_byte_identical(tmp_path) -> None:
    source = _input(tmp_path / "in.jsonl", 1000)
    fix(source, tmp_path / "reference.jsonl", corrector=Tagging(), chunk_size=64, workers=1)
    out = tmp_path / "out.jsonl"
    with pytest.raises(RuntimeError, match="crashed on record 700") as info:
        fix(source, out, corrector=Tagging(crash=700), chunk_size=64, workers=2)
    assert any("raised in a worker process" in note for note in info.value.__notes__)
    assert not out.exists()
    done = json.loads((tmp_path / ".out.jsonl.checkpoint.json").read_text())["lines_done"]
    assert 0 < done < 700
    resumed = fix(source, out, corrector=Tagging(), chunk_size=64, workers=2, resume=True)
    assert resumed.resumed_from_line == done and resumed.records == 1001
    assert out.read_bytes() == (tmp_path / "reference.jsonl").read_bytes()
    assert (tmp_path / "out.errors.jsonl").read_bytes().replace(b"out.jsonl", b"") == \
        (tmp_path / "reference.errors.jsonl").read_bytes().replace(b"reference.jsonl", b"")


#: a run slow enough to be interrupted: the pass-through corrector, 0.5 ms per record, in two workers
SLOW_RUN = """
import sys, time
from halluguard.pipeline import PassThrough, fix

class Slow(PassThrough):
    def correct(self, answers, images):
        time.sleep(0.0005 * len(answers))
        return super().correct(answers, images)

fix(sys.argv[1], sys.argv[2], corrector=Slow(), chunk_size=64, workers=2)
"""


def test_ctrl_c_stops_every_process_and_the_run_resumes(tmp_path) -> None:
    source = _input(tmp_path / "in.jsonl", 20_000)
    reference = tmp_path / "reference.jsonl"
    fix(source, reference, chunk_size=64, workers=1)
    out = tmp_path / "out.jsonl"
    checkpoint = tmp_path / ".out.jsonl.checkpoint.json"
    process = subprocess.Popen([sys.executable, "-c", SLOW_RUN, str(source), str(out)],
                               start_new_session=True, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        try:
            if json.loads(checkpoint.read_text())["lines_done"] > 1000:
                break
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group gets it
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0 and b"KeyboardInterrupt" in stderr, stderr[-2000:]
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):  # no worker left behind
        os.killpg(process.pid, 0)
    assert not out.exists()
    resumed = fix(source, out, chunk_size=64, workers=2, resume=True)
    assert 1000 < resumed.resumed_from_line < 20_000
    assert out.read_bytes() == reference.read_bytes()


def test_default_workers(tmp_path) -> None:
    from halluguard.correctors.woodpecker import Woodpecker
    from halluguard.pipeline import PassThrough

    annotations = Woodpecker.from_spec(f"annotations:{EXAMPLES / 'labels.json'}")
    assert parallel_by_default(annotations) and not parallel_by_default(PassThrough())
    assert resolve_workers(None, PassThrough()) == 1 and resolve_workers(3, PassThrough()) == 3
    with pytest.raises(ValueError, match="at least 1"):
        resolve_workers(0, annotations)


@pytest.mark.slow
def test_the_real_corrector_gives_the_same_bytes_with_two_workers(coco500, tmp_path) -> None:
    pytest.importorskip("spacy")
    source = tmp_path / "in.jsonl"
    lines = (coco500 / "llava15_greedy.jsonl").read_text().splitlines()[:240]
    source.write_text("\n".join(lines[:120] + ['{"image_id": 1, "caption": 3}'] + lines[120:]) + "\n")
    options = {"detector_labels": "coco"}
    detector = f"annotations:{coco500 / 'gt_objects.json'}"
    one = fix(source, tmp_path / "one.jsonl", detector=detector, options=options, chunk_size=32, workers=1)
    two = fix(source, tmp_path / "two.jsonl", detector=detector, options=options, chunk_size=32, workers=2)
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
    assert one.written == two.written == 240 and one.errors == two.errors == 1 and two.corrected > 50


def test_the_vocabulary_is_part_of_the_resume_fingerprint(tmp_path) -> None:
    from halluguard.correctors.vocabulary import Vocabulary
    from halluguard.io import ResumeMismatch
    from halluguard.pipeline import run_options

    words = tmp_path / "words.json"
    words.write_text(json.dumps({"circle": ["ring"]}))
    default = run_options("annotations:x.json", {}, None, None)
    own = run_options("annotations:x.json", {"vocabulary": str(words)}, None, None)
    assert default["vocabulary_sha1"] == Vocabulary.default().digest() != own["vocabulary_sha1"]
    words.write_text(json.dumps({"circle": ["ring", "disc"]}))  # same file name, other words
    assert run_options("annotations:x.json", {"vocabulary": str(words)}, None, None) != own
    assert "vocabulary_sha1" not in run_options("none", {}, None, None)  # nothing is parsed

    source = _input(tmp_path / "in.jsonl", 300)
    first, second = Tagging(crash=200), Tagging()
    first.vocabulary = Vocabulary.default()
    second.vocabulary = Vocabulary.empty().extend({"circle": ["ring"]})
    with pytest.raises(RuntimeError):
        fix(source, tmp_path / "out.jsonl", corrector=first, chunk_size=64, workers=2)
    with pytest.raises(ResumeMismatch):
        fix(source, tmp_path / "out.jsonl", corrector=second, chunk_size=64, workers=2, resume=True)


def test_a_text_worker_loads_spacy_without_torch() -> None:
    pytest.importorskip("spacy")
    code = ("import sys; from halluguard.pipeline import prepare_text_worker; prepare_text_worker(); "
            "import thinc.compat; print('torch' in sys.modules, thinc.compat.has_torch); "
            "import importlib.util as u; print(u.find_spec('torch') is None or bool(__import__('torch')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False", "True"]  # and torch still imports afterwards


def test_memory_stays_flat_with_two_workers(tmp_path) -> None:
    code = (
        "import resource, sys; from halluguard.pipeline import PassThrough, fix; "
        "fix(sys.argv[1], sys.argv[2], corrector=PassThrough(), workers=2); "
        "own = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')); "
        "print(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    peaks = []
    for n in (3_000, 100_000):
        source = _input(tmp_path / f"in{n}.jsonl", n)
        run = subprocess.run([sys.executable, "-c", code, str(source), str(tmp_path / f"out{n}.jsonl")],
                             capture_output=True, text=True, check=True)
        peaks.append([int(v) for v in run.stdout.split()])
    (small_parent, small_worker), (big_parent, big_worker) = peaks
    assert big_parent - small_parent < 15_000 and big_worker - small_worker < 15_000, peaks


def test_an_error_in_the_writing_process_stops_the_workers(tmp_path) -> None:
    import multiprocessing

    def progress(done_bytes: int, records: int) -> None:
        raise KeyboardInterrupt  # as Ctrl-C would, between two chunks

    source = _input(tmp_path / "in.jsonl", 2000)
    with pytest.raises(KeyboardInterrupt):
        fix(source, tmp_path / "out.jsonl", corrector=Tagging(), chunk_size=64, workers=2,
            on_progress=progress)
    assert multiprocessing.active_children() == []
    assert json.loads((tmp_path / ".out.jsonl.checkpoint.json").read_text())["lines_done"] > 0
