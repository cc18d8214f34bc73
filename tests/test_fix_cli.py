"""The promises of `halluguard fix`, checked on real files through real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from tests.conftest import run_cli


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write_mixed_input(folder: Path) -> tuple[Path, dict[int, str]]:
    """Good records and every kind of bad one; returns the file and {line: expected reason}."""
    Image.new("RGB", (32, 24), "blue").save(folder / "good.png")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    Image.new("RGB", (64, 64), "red").save(folder / "full.png")
    (folder / "truncated.png").write_bytes((folder / "full.png").read_bytes()[:60])
    (folder / "folder.jpg").mkdir()
    lines: list[bytes] = [
        json.dumps({"id": "a", "answer": "A blue square.", "image": "good.png", "extra": {"k": [1, 2]}}).encode(),
        b'{"id": "b", "answer": "broken json"',
        json.dumps({"id": "c", "caption": "no answer field but a caption"}).encode(),
        json.dumps({"id": "d", "prompt": "describe", "image": "good.png"}).encode(),
        json.dumps({"id": "e", "answer": "x", "image": "missing.png"}).encode(),
        json.dumps({"id": "f", "answer": "x", "image": "corrupt.jpg"}).encode(),
        b'{"id": "g", "answer": "caf\xe9 latin-1"}',
        json.dumps({"id": "h", "answer": "x", "image": "truncated.png"}).encode(),
        json.dumps({"id": "i", "answer": "x", "image": "folder.jpg"}).encode(),
        b"",
        json.dumps({"id": "j", "answer": "Unicode \u00e9\u4e2d ok.", "image_id": 42, "score": 1.5}).encode(),
    ]
    path = folder / "answers.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    expected_errors = {2: "malformed JSON", 4: "no text field", 5: "not found", 6: "corrupt", 7: "invalid UTF-8",
                       8: "corrupt", 9: "unreadable"}
    return path, expected_errors


def test_help_for_every_command():
    for args in (["--help"], ["fix", "--help"], ["eval", "--help"], ["demo", "--help"]):
        result = run_cli(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert "Usage" in result.stdout


def test_every_bad_record_goes_to_errors_and_the_run_goes_on(tmp_path):
    source, expected = _write_mixed_input(tmp_path)
    out = tmp_path / "fixed.jsonl"
    result = run_cli("fix", str(source), "-o", str(out), "--detector", "none", "--json", "-")
    assert result.returncode == 1, result.stderr  # some records failed, the rest written
    summary = json.loads(result.stdout)
    written, errors = _lines(out), _lines(tmp_path / "fixed.errors.jsonl")
    non_blank = [line for line in source.read_bytes().splitlines() if line.strip()]
    assert len(written) + len(errors) == len(non_blank) == summary["records"]
    assert summary["errors"] == len(errors) == len(expected)
    assert {e["line"]: e["reason"] for e in errors}.keys() == expected.keys()
    for error in errors:
        assert expected[error["line"]] in error["reason"], error
        assert error["input"], "the raw line is kept in the errors file"
    assert [e["id"] for e in errors] == [None, "d", "e", "f", None, "h", "i"]
    # order and unknown fields kept
    assert [r["id"] for r in written] == ["a", "c", "j"]
    assert written[0]["extra"] == {"k": [1, 2]} and written[2]["score"] == 1.5
    assert written[1]["corrected"] == "no answer field but a caption"
    assert written[2]["answer"] == "Unicode \u00e9\u4e2d ok." and written[2]["corrected"] == written[2]["answer"]


def test_text_field_option(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": 1, "answer": "a", "corrected": "b"}) + "\n")
    out = tmp_path / "out.jsonl"
    assert run_cli("fix", str(source), "-o", str(out), "--text-field", "corrected", "-d", "none", "-q").returncode == 0
    assert _lines(out)[0]["corrected"] == "b"


def test_a_vlmevalkit_prediction_table_is_fixed_row_by_row(tmp_path):
    """A VLMEvalKit TSV (index, question, answer = label, prediction, image_path) is fixed like JSON lines:
    the prediction is the answer, the label is kept, each row once although it names several splits."""
    table = Path(__file__).parent / "metrics" / "harness_files" / "llava_POPE.tsv"
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (64, 48), "white").save(images / "COCO_val2014_000000310196.jpg")
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"COCO_val2014_000000310196.jpg": ["snowboard", "person"]}))
    out = tmp_path / "fixed.jsonl"
    result = run_cli("fix", str(table), "-o", str(out), "--images", str(images), "-d", f"annotations:{labels}",
                     "--detector-labels", "coco", "-q")
    assert result.returncode == 0, result.stderr
    records = _lines(out)
    assert [r["id"] for r in records] == ["1", "2", "3", "4"]
    assert [r["label"] for r in records] == ["yes", "no", "no", "yes"]
    dog = records[1]
    assert dog["answer"] == "Yes, there is a dog." and dog["corrected"].startswith("No")
    assert records[0]["corrected"] == "Yes"  # the snowboard is there
    bad = tmp_path / "bad.tsv"
    bad.write_text("index\tquestion\n1\tIs there a dog?\n")
    result = run_cli("fix", str(bad), "-d", "none")
    assert result.returncode == 2 and "no 'prediction' column" in result.stderr


def test_usage_errors_exit_2(tmp_path):
    assert run_cli("fix", str(tmp_path / "nope.jsonl")).returncode == 2
    assert run_cli("fix", "--no-such-option").returncode == 2
    source = tmp_path / "in.jsonl"
    source.write_text('{"answer": "a"}\n')
    assert run_cli("fix", str(source), "--images", str(tmp_path / "no-folder")).returncode == 2


def test_summary_line_and_quiet(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"answer": "a"}\n{"answer": "b"}\n')
    loud = run_cli("fix", str(source), "-o", str(tmp_path / "a.jsonl"), "-d", "none")
    assert loud.returncode == 0 and "2 records, 0 corrected, 0 errors" in loud.stderr
    quiet = run_cli("fix", str(source), "-o", str(tmp_path / "b.jsonl"), "-d", "none", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == ""
    assert not (tmp_path / "a.errors.jsonl").exists()


def _big_input(path: Path, n: int) -> None:
    with open(path, "w") as handle:
        for i in range(n):
            if i % 100 == 7:
                handle.write('{"id": %d, "answer": broken}\n' % i)
            else:
                handle.write(json.dumps({"id": i, "answer": f"there are {i % 5} dogs", "pad": "x" * 40}) + "\n")


def test_kill_9_then_resume_is_byte_identical(tmp_path):
    source = tmp_path / "big.jsonl"
    _big_input(source, 300_000)
    reference = tmp_path / "reference.jsonl"
    assert run_cli("fix", str(source), "-o", str(reference), "-d", "none", "-q").returncode == 1
    out = tmp_path / "out.jsonl"
    checkpoint = tmp_path / ".out.jsonl.checkpoint.json"
    process = subprocess.Popen([sys.executable, "-m", "halluguard.cli", "fix", str(source), "-o", str(out), "-d", "none", "-q"])
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if json.loads(checkpoint.read_text())["lines_done"] > 2000:
                break
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not out.exists(), "an interrupted run leaves nothing under the final name"
    done = json.loads(checkpoint.read_text())["lines_done"]
    assert 0 < done < 300_000, "the kill must land in the middle of the run"
    resumed = run_cli("fix", str(source), "-o", str(out), "-d", "none", "--resume", "--json", "-")
    assert resumed.returncode == 1
    assert json.loads(resumed.stdout)["resumed_from_line"] == done
    assert out.read_bytes() == reference.read_bytes()
    assert (tmp_path / "out.errors.jsonl").read_bytes().replace(b"out.jsonl", b"") == \
        (tmp_path / "reference.errors.jsonl").read_bytes().replace(b"reference.jsonl", b"")


def test_memory_stays_flat_with_input_size(tmp_path):
    # the child's own peak (VmHWM): ru_maxrss would also carry the peak of this pytest process
    code = (
        "import sys; from halluguard.pipeline import fix; fix(sys.argv[1], sys.argv[2]); "
        "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')))"
    )
    peaks = []
    for n in (2_000, 80_000):
        source = tmp_path / f"in{n}.jsonl"
        _big_input(source, n)
        run = subprocess.run([sys.executable, "-c", code, str(source), str(tmp_path / f"out{n}.jsonl")],
                             capture_output=True, text=True, check=True)
        peaks.append(int(run.stdout.split()[-1]))
    assert peaks[1] - peaks[0] < 15_000, f"peak RSS grew from {peaks[0]} kB to {peaks[1]} kB"
