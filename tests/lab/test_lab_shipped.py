"""The shipped lab models, loaded through the public path, stay inside the ranges their training seeds span.

Ranges: on these 300 test images (150 prior-breaking), the two full-recipe captioner seeds (0 and 1) and
the three detector seeds, widened to the outer ends of their 95 % bootstrap intervals, in float32 and in
bfloat16 (the captioner's CPU dtype depends on the machine; ``benchmarks/lab_seeds.py`` prints them).
A broken tokenizer, processor, checkpoint or decoder lands far outside.
"""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from halluguard.lab import evaluate, scoring  # noqa: E402

N = 300
RANGES = {  # percent, greedy captions of the shipped captioner
    "recall": (76, 90),
    "chair_i": (9, 21),
    "chair_s": (20, 46),
    "prior": (8, 33),
    "control": (3, 12),
}


@pytest.fixture(scope="module")
def data():
    return evaluate.load_data(N)


@pytest.fixture(scope="module")
def lab_captioner():
    assert (evaluate.CAPTIONER / "model.safetensors").exists(), "the shipped captioner is missing"
    threads = torch.get_num_threads()
    yield evaluate.Captioner(evaluate.CAPTIONER)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def greedy(lab_captioner, data):
    return lab_captioner.caption(data.images)


def test_shipped_assets_are_small_and_load_with_from_pretrained():
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    size = sum(f.stat().st_size for f in evaluate.CAPTIONER.iterdir())
    assert size <= 4 * 2**20 and evaluate.DETECTOR.stat().st_size <= 6 * 2**20
    model = LlavaForConditionalGeneration.from_pretrained(evaluate.CAPTIONER)
    processor = AutoProcessor.from_pretrained(evaluate.CAPTIONER)
    assert model.dtype == torch.float16 and type(processor).__name__ == "LlavaProcessor"
    assert processor.tokenizer.convert_tokens_to_ids("<image>") == model.config.image_token_id


def test_greedy_captions_stay_in_the_seed_ranges(greedy, data):
    rates = scoring.score(greedy, data.truths).rates()
    for key, (lo, hi) in RANGES.items():
        assert lo <= rates[key] <= hi, (key, rates[key])
    # the prior does its work: B is named far more often after A than without it
    assert rates["prior"] >= 1.5 * rates["control"]


def test_bfloat16_captions_match_float32(data):
    """The harness's CPU dtype (bfloat16 where native) changes almost no caption."""
    images = data.images[:200]
    wide = evaluate.Captioner(evaluate.CAPTIONER, dtype=torch.float32).caption(images)
    narrow = evaluate.Captioner(evaluate.CAPTIONER, dtype=torch.bfloat16).caption(images)
    same = sum(a == b for a, b in zip(wide, narrow))
    assert same >= 0.95 * len(images), f"{same} of {len(images)} captions identical"


def test_vcd_at_step_500_does_not_hallucinate_more(lab_captioner, greedy, data):
    pytest.importorskip("halluguard.decoders")
    part = slice(75, 225)  # 75 prior-breaking and 75 natural scenes
    vcd = lab_captioner.caption(data.images[part], "vcd", noise_step=500)
    plain = scoring.score(greedy[part], data.truths[part]).rates()
    guarded = scoring.score(vcd, data.truths[part]).rates()
    assert guarded["chair_i"] <= plain["chair_i"] + 1.5
    assert RANGES["recall"][0] - 2 <= guarded["recall"] <= RANGES["recall"][1]


def test_detector_finds_the_objects(data):
    pytest.importorskip("ultralytics")
    scores = evaluate.score_detector(evaluate.DETECTOR, data)
    assert 85 <= scores["recall"] <= 96, scores
    assert 88 <= scores["precision"] <= 98, scores


def test_fix_with_the_lab_detector_removes_most_hallucinations(greedy, data, tmp_path):
    pytest.importorskip("ultralytics")
    pytest.importorskip("spacy")
    corrections = evaluate.Corrections(data, tmp_path, weak=False)
    fixed = corrections.correct("fixed", greedy)
    before, after = scoring.score(greedy, data.truths).rates(), scoring.score(fixed, data.truths).rates()
    assert after["chair_i"] <= 4 and after["prior"] <= 5
    assert before["recall"] - 9 <= after["recall"] <= before["recall"]
