"""CHAIR by default equals the official script, caption by caption (``official_chair.py`` re-implements it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from official_chair import CHAIR

from halluguard.metrics.chair import compute_chair, load_ground_truth
from halluguard.metrics.coco_vocabulary import find_mentions

COCO500 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "coco500"

#: Captions in the shapes where a tokenizer, a singulariser or a synonym table can disagree.
EDGE_CAPTIONS = [
    "A man sits on chairs/stools next to forks/spoons.",
    "The bench'smid section has a dog's bowl and the dogs' toys.",
    "A Dog and a TV. An iPhone, a cheesecake and a motor bike near a Motorbike.",
    "A dog can be seen near a can of soda; the cat could jump.",
    "Two buses, a bus, a minibus and an airbus; glasses and a wine glass.",
    "People, women, men, children and policemen walk past knives, mice and geese.",
    "Three ties, two skis, oxen, cattle and sheep; collies and doggies and puppies.",
    "A toilet seat. The seat of the toilet. A seat by the window.",
    "A baby elephant, an adult giraffe, a passenger train on train tracks at home plate.",
    "Hot dogs and a teddy bear by the traffic lights near a stop sign and a fire hydrant.",
    "A stove top oven, a tennis racket and a sports ball; a hair drier and a cell phone.",
    'She said "a cat" (maybe two cats) -- and a dog... a bird? A kite!',
    "T-shirts, mothers-in-law and a 2.5 m surfboard; e.g. a skateboard, i.e. a board.",
    "There are 2. dogs on the couch.And a cat.",
    "It's a laptop; you can't see the mouse, I cannot see the keyboard.",
    "Two zebras\u2014and a giraffe\u2013near \u201ctrees\u201d and \u2018rocks\u2019.",
    "a man riding a horse. a woman holding an umbrella. a boy with a frisbee",
    "",
    "...",
    "Vases, vase; a vas; buses' seats; the bus's wheels.",
]


def _reference_gt(captions):
    return {i: {"dog", "person", "cat", "chair", "bus", "couch", "toilet"} for i in range(len(captions))}


def test_edge_captions_name_the_same_objects_as_the_official_script():
    reference = CHAIR(_reference_gt(EDGE_CAPTIONS))
    for caption in EDGE_CAPTIONS:
        _, expected = reference.caption_to_words(caption)
        ours = [m.label for m in find_mentions(caption, standard=True)]
        assert ours == expected, caption


def test_edge_captions_score_as_the_official_script():
    gt = _reference_gt(EDGE_CAPTIONS)
    official = CHAIR(gt).compute_chair(EDGE_CAPTIONS, list(range(len(EDGE_CAPTIONS))))
    ours = compute_chair([(str(i), c) for i, c in enumerate(EDGE_CAPTIONS)], {str(k): v for k, v in gt.items()})
    assert ours.chair_s == pytest.approx(100 * official["CHAIRs"], abs=1e-9)
    assert ours.chair_i == pytest.approx(100 * official["CHAIRi"], abs=1e-9)
    assert ours.recall == pytest.approx(100 * official["Recall"], abs=1e-9)


@pytest.mark.parametrize("name", ["llava15_greedy", "llava15_beam5", "llava15_opera", "minigpt4_greedy"])
def test_shared_caption_logs_score_exactly_as_the_official_script(name):
    if not (COCO500 / "gt_objects.json").exists():
        pytest.skip("../shared/data/coco500 is not present")
    gt = load_ground_truth(COCO500 / "gt_objects.json")
    records = [json.loads(line) for line in (COCO500 / f"{name}.jsonl").read_text().splitlines()]
    captions = [r["caption"] for r in records]
    keys = [str(r["image_id"]) for r in records]
    official = CHAIR({k: set(v) for k, v in gt.items()}).compute_chair(captions, keys)
    ours = compute_chair(list(zip(keys, captions)), gt)
    for caption, expected, score in zip(captions, official["sentences"], ours.captions):
        assert [m.label for m in score.mentions] == expected, caption
    assert round(ours.chair_s - 100 * official["CHAIRs"], 10) == 0
    assert round(ours.chair_i - 100 * official["CHAIRi"], 10) == 0
    assert round(ours.recall - 100 * official["Recall"], 10) == 0


def test_the_corrected_rules_are_a_named_option_and_find_what_the_official_ones_miss():
    caption = "A bus, chairs/stools, a cheesecake and an iPhone."
    official = [m.label for m in find_mentions(caption, standard=True)]
    corrected = [m.label for m in find_mentions(caption, standard=False)]
    assert official == []
    assert corrected == ["bus", "chair", "chair", "cake", "cell phone"]
