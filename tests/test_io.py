"""Line parsing and the atomic, resumable writer."""

from __future__ import annotations

import json

import pytest

from halluguard.io import AtomicJsonlWriter, ErrorRecord, ResumeMismatch, errors_path_for, fingerprint, parse_line, read_lines
from halluguard.records import Answer


def test_read_lines_numbers_physical_lines_and_skips_blank_ones(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"a": 1}\r\n\n   \n{"a": 2}')
    assert list(read_lines(path)) == [(1, b'{"a": 1}'), (4, b'{"a": 2}')]
    assert list(read_lines(path, skip_until=1)) == [(4, b'{"a": 2}')]


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b'{"answer": "x"', "malformed JSON"),
        (b'["answer"]', "expected a JSON object"),
        (b'{"id": 7, "caption_text": "x"}', "no text field"),
        (b'{"answer": 3}', "must be a string"),
        (b'{"answer": "caf\xe9"}', "invalid UTF-8"),
        (b'{"answer": "x", "image": ""}', "non-empty path"),
        (b'{"answer": "x", "logprobs": 1.5}', "logprobs"),
    ],
)
def test_bad_lines_become_error_records_with_reason(tmp_path, raw, reason):
    parsed = parse_line(12, raw, tmp_path)
    assert isinstance(parsed, ErrorRecord)
    assert parsed.line == 12 and reason in parsed.reason
    assert parsed.input  # the raw line is kept, so nothing is lost
    if b'"id": 7' in raw:
        assert parsed.id == 7


def test_text_field_falls_back_to_caption_then_text(tmp_path):
    assert parse_line(1, b'{"caption": "c", "text": "t"}', tmp_path).text == "c"
    assert parse_line(1, b'{"text": "t"}', tmp_path).text == "t"
    explicit = parse_line(1, b'{"answer": "a", "corrected": "b"}', tmp_path, text_field="corrected")
    assert explicit.text == "b"
    missing = parse_line(1, b'{"answer": "a"}', tmp_path, text_field="corrected")
    assert isinstance(missing, ErrorRecord) and "'corrected'" in missing.reason


def test_image_paths_resolve_against_images_dir_or_input_folder(tmp_path):
    answer = parse_line(1, b'{"answer": "a", "image": "x.jpg", "id": "q1"}', tmp_path)
    assert isinstance(answer, Answer)
    assert answer.image == tmp_path / "x.jpg" and answer.id == "q1" and answer.image_key == "x.jpg"
    other = parse_line(1, b'{"answer": "a", "image": "x.jpg"}', tmp_path, images_dir=tmp_path / "imgs")
    assert other.image == tmp_path / "imgs" / "x.jpg"


def test_errors_path_naming(tmp_path):
    assert errors_path_for(tmp_path / "fixed.jsonl").name == "fixed.errors.jsonl"
    assert errors_path_for(tmp_path / "fixed.out").name == "fixed.out.errors.jsonl"


def test_writer_is_atomic_and_resumes_from_checkpoint(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("{}\n")
    out = tmp_path / "out.jsonl"
    print_ = fingerprint(source, {"x": 1})
    writer = AtomicJsonlWriter(out, print_)
    writer.write({"n": 1})
    writer.checkpoint(1)
    writer.write({"n": 2})  # written after the checkpoint: must be dropped on resume
    writer.close()
    assert not out.exists(), "nothing appears under the final name before the run completes"
    resumed = AtomicJsonlWriter(out, print_, resume=True)
    assert resumed.lines_done == 1
    resumed.write({"n": 2})
    resumed.lines_done = 2
    resumed.commit()
    assert [json.loads(line) for line in out.read_text().splitlines()] == [{"n": 1}, {"n": 2}]
    assert not list(tmp_path.glob(".out.jsonl*")), "temporary files are gone after commit"


def test_resume_with_other_options_is_refused(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("{}\n")
    out = tmp_path / "out.jsonl"
    writer = AtomicJsonlWriter(out, fingerprint(source, {"detector": "a"}))
    writer.checkpoint(0)
    writer.close()
    with pytest.raises(ResumeMismatch, match="without --resume"):
        AtomicJsonlWriter(out, fingerprint(source, {"detector": "b"}), resume=True)
