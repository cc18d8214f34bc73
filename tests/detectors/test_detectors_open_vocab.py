"""The open-vocabulary backend on a tiny random OWLv2 built from a config (no hub): plumbing, shapes,
thresholds, per-label independence, and boxes in pixels of the original image."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from detector_fakes import draw  # noqa: E402

from halluguard.detectors import CachedDetector, DetectorError, load_detector  # noqa: E402
from halluguard.detectors.open_vocab import OpenVocabDetector, nms  # noqa: E402
from halluguard.images import ImageRef  # noqa: E402

SIDE = 64


@pytest.fixture(scope="module")
def tiny_owl(tmp_path_factory):
    """A 2-layer OWLv2 (64 px input, 16 px patches: 16 boxes per image) with a letters-only tokenizer."""
    from transformers import (
        CLIPTokenizer,
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessor,
        Owlv2Processor,
    )

    folder = tmp_path_factory.mktemp("tiny-owlv2")
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"!": 0}
    for c in letters:
        vocab[c] = len(vocab)
    for c in letters:
        vocab[c + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16, pad_token="<|endoftext|>"
    )
    processor = Owlv2Processor(
        image_processor=Owlv2ImageProcessor(size={"height": SIDE, "width": SIDE}), tokenizer=tokenizer
    )
    config = Owlv2Config(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=16,
            bos_token_id=len(vocab) - 2,
            eos_token_id=len(vocab) - 1,
            pad_token_id=len(vocab) - 1,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=SIDE,
            patch_size=16,
        ),
        projection_dim=32,
    )
    torch.manual_seed(0)
    model = Owlv2ForObjectDetection(config).eval()
    saved = folder / "model"
    model.save_pretrained(saved)
    processor.save_pretrained(saved)
    return saved, model, processor


def raw_outputs(model, processor, pil, texts):
    inputs = processor(text=[texts], images=[pil], return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    return out.logits[0].numpy(), out.pred_boxes[0].numpy()


def test_loads_from_a_local_folder_and_finds_what_it_is_asked(tiny_owl, tmp_path):
    saved, _, _ = tiny_owl
    detector = load_detector(f"owlv2:{saved}", threshold=0.0, nms_iou=None, device="cpu")
    assert detector.vocabulary is None and detector.model_type == "owlv2"
    wide = ImageRef(draw(tmp_path / "wide.png", (200, 40, 40), (120, 50)))
    tall = ImageRef(draw(tmp_path / "tall.png", (40, 40, 200), (30, 90)))
    wide_result, tall_result = detector.detect([wide, tall], queries=[["dog", "cat"], ["kite"]])
    assert wide_result.image_size == (120, 50) and tall_result.image_size == (30, 90)
    assert wide_result.vocabulary == frozenset({"dog", "cat"}) and tall_result.vocabulary == frozenset(
        {"kite"}
    )
    patches = (SIDE // 16) ** 2
    # threshold 0 and no NMS: every patch box, once per label asked
    assert sorted({d.label for d in wide_result.detections}) == ["cat", "dog"]
    assert len(wide_result.of("dog")) == len(wide_result.of("cat")) == patches
    assert len(tall_result.detections) == patches
    for result in (wide_result, tall_result):
        width, height = result.image_size
        for d in result.detections:
            x1, y1, x2, y2 = d.box
            assert 0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height
            assert 0.0 <= d.score <= 1.0


def test_threshold_and_pixel_boxes_match_the_model(tiny_owl, tmp_path):
    saved, model, processor = tiny_owl
    image = ImageRef(draw(tmp_path / "img.png", (90, 160, 60), (100, 40)))
    logits, boxes = raw_outputs(model, processor, image.pil(), ["a photo of a dog"])
    scores = 1 / (1 + np.exp(-logits[:, 0]))
    threshold = float(np.median(scores))
    detector = OpenVocabDetector(model, processor, threshold=threshold, nms_iou=None, device="cpu")
    found = detector.detect([image], queries=["dog"])[0].detections
    assert len(found) == int((scores >= threshold).sum())
    assert 0 < len(found) < len(scores)
    assert all(d.score >= threshold for d in found)
    # OWLv2 pads to a square at the bottom/right: relative boxes scale by the longer side (100 px)
    best = int(np.argmax(scores))
    cx, cy, w, h = boxes[best]
    expected = np.clip(
        [(cx - w / 2) * 100, (cy - h / 2) * 100, (cx + w / 2) * 100, (cy + h / 2) * 100],
        0,
        [100, 40, 100, 40],
    )
    top = max(found, key=lambda d: d.score)
    assert top.score == pytest.approx(float(scores[best]), abs=1e-5)
    assert top.box == pytest.approx(tuple(expected), abs=1e-3)
    assert (
        OpenVocabDetector(model, processor, threshold=1.0).detect([image], queries=["dog"])[0].detections
        == []
    )


def test_each_label_is_scored_on_its_own(tiny_owl, tmp_path):
    _, model, processor = tiny_owl
    detector = OpenVocabDetector(model, processor, threshold=0.3, device="cpu")
    image = ImageRef(draw(tmp_path / "x.png", (10, 200, 10), (80, 60)))
    alone = detector.detect([image], queries=[["dog"]])[0]
    together = detector.detect([image], queries=[["cat", "dog", "zebra"]])[0]
    assert [(d.box, round(d.score, 5)) for d in alone.of("dog")] == [
        (d.box, round(d.score, 5)) for d in together.of("dog")
    ]


def test_nms_keeps_no_overlapping_pair(tiny_owl, tmp_path):
    _, model, processor = tiny_owl
    image = ImageRef(draw(tmp_path / "n.png", (120, 120, 120), (64, 64)))
    loose = OpenVocabDetector(model, processor, threshold=0.0, nms_iou=None).detect([image], ["dog"])[0]
    tight = OpenVocabDetector(model, processor, threshold=0.0, nms_iou=0.3).detect([image], ["dog"])[0]
    assert 0 < len(tight.detections) <= len(loose.detections)
    boxes = np.array([d.box for d in tight.detections])
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
            union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
            assert union == 0 or inter / union <= 0.3 + 1e-9


def test_nms_function():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 9], [50, 50, 60, 60], [0, 0, 10, 10]], dtype=float)
    assert nms(boxes, np.array([0.5, 0.9, 0.7, 0.1]), 0.5) == [1, 2]


def test_cached_open_vocabulary_runs_new_labels_only(tiny_owl, tmp_path):
    saved, model, processor = tiny_owl
    calls = []

    class Spy(OpenVocabDetector):
        def _run(self, pils, labels):
            calls.append([list(x) for x in labels])
            return super()._run(pils, labels)

    cached = CachedDetector(Spy(model, processor, threshold=0.2, device="cpu"))
    image = ImageRef(draw(tmp_path / "c.png", (1, 2, 3), (40, 40)))
    cached.detect([image], queries=[["dog", "cat"]])
    cached.detect([image], queries=[["cat", "dog"]])
    cached.detect([image], queries=[["cat", "bird"]])
    assert calls == [[["dog", "cat"]], [["bird"]]]


def test_needs_queries(tiny_owl, tmp_path):
    _, model, processor = tiny_owl
    detector = OpenVocabDetector(model, processor, device="cpu")
    with pytest.raises(ValueError, match="queries"):
        detector.detect([ImageRef(draw(tmp_path / "q.png"))])
    defaulted = OpenVocabDetector(model, processor, device="cpu", default_queries=["dog"], threshold=0.0)
    assert defaulted.detect([ImageRef(draw(tmp_path / "q.png"))])[0].vocabulary == frozenset({"dog"})


def test_hub_id_offline_says_how_to_pass_a_folder(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DetectorError) as info:
        load_detector("owlv2:halluguard-tests/no-such-model")
    assert "halluguard-tests/no-such-model" in str(info.value) and "local folder" in str(info.value)


def test_missing_folder(tmp_path):
    with pytest.raises(DetectorError, match="not found"):
        load_detector(f"owlv2:{tmp_path / 'nope' / 'model'}")
