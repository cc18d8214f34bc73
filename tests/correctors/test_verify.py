"""verify(): objects, counts, colours (on images drawn with PIL) and spatial relations."""

from __future__ import annotations

import json
import random

import pytest
from PIL import Image, ImageDraw

from halluguard.correctors.colours import (
    COLOURS,
    NEIGHBOURS,
    canonical_colour,
    colour_fractions,
    colour_of_rgb,
)
from halluguard.correctors.verify import RELATIONS, describe, relation_holds, verify
from halluguard.detectors.base import AnnotatedDetections
from halluguard.images import ImageRef
from halluguard.records import Claim, Detection, Detections

VOCAB = frozenset({"dog", "cat", "car", "cup", "dining table", "person", "bed", "laptop", "kite"})


def seen(*detections, size=(200, 100), vocabulary=VOCAB):
    return Detections([Detection(*d) for d in detections], size, vocabulary)


def claim(kind="object", label="dog", **fields):
    return Claim(text=label, start=0, end=len(label), kind=kind, label=label, **fields)


# -- objects ---------------------------------------------------------------------------------


def test_object_verdicts_and_evidence():
    det = seen(("dog", 0.9, (10, 10, 50, 50)), ("dog", 0.6, (60, 10, 90, 50)), ("cat", 0.2, (0, 0, 5, 5)))
    claims = [
        claim(label="dog"),
        claim(label="car"),
        claim(label="zebra"),
        claim(label="cat"),
        claim(label=""),
    ]
    verify(claims, det, None)
    assert [c.verdict for c in claims] == [
        "supported",
        "contradicted",
        "unverifiable",
        "unverifiable",
        "unverifiable",
    ]
    assert claims[0].evidence == {
        "scores": [0.9, 0.6],
        "count": 2,
        "boxes": [[10, 10, 50, 50], [60, 10, 90, 50]],
    }
    assert claims[1].evidence["count"] == 0
    assert "does not know" in claims[2].evidence["reason"]
    assert "weak" in claims[3].evidence["reason"]  # 0.2: between min_score 0.1 and threshold 0.25
    for c in claims:
        json.dumps(c.to_json())


def test_threshold_and_min_score_are_respected():
    det = seen(("dog", 0.4, (10, 10, 50, 50)))
    c = claim()
    verify([c], det, None, threshold=0.5)
    assert c.verdict == "unverifiable"
    verify([c], det, None, threshold=0.5, min_score=0.45)
    assert c.verdict == "contradicted"
    verify([c], det, None, threshold=0.3)
    assert c.verdict == "supported"


def test_an_unknown_class_is_never_contradicted():
    rng = random.Random(0)
    for _ in range(200):
        labels = rng.sample(sorted(VOCAB), 3)
        det = seen(
            *[(label, rng.uniform(0.3, 1), (0, 0, 10, 10)) for label in labels], vocabulary=frozenset(labels)
        )
        unknown = rng.choice(sorted(VOCAB - set(labels)) + ["giraffe"])
        kinds = [
            claim(label=unknown),
            claim("count", unknown, count=rng.randint(0, 4)),
            claim("attribute", unknown, attribute="red"),
            claim("relation", unknown, relation=rng.choice(RELATIONS), target=labels[0]),
            claim("relation", labels[0], relation=rng.choice(RELATIONS), target=unknown),
        ]
        verify(kinds, det, None)
        assert all(c.verdict == "unverifiable" for c in kinds)


def test_open_vocabulary_result_with_vocabulary_none_knows_everything():
    c = claim(label="giraffe")
    verify([c], Detections([], (10, 10), None), None)
    assert c.verdict == "contradicted"


# -- counts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "count, count_min, verdict",
    [
        (2, None, "supported"),
        (3, None, "contradicted"),
        (1, None, "contradicted"),
        (None, 2, "supported"),
        (None, 3, "contradicted"),
        (None, None, "supported"),
    ],
)
def test_counts(count, count_min, verdict):
    det = seen(("dog", 0.9, (0, 0, 10, 10)), ("dog", 0.8, (20, 0, 30, 10)), ("cat", 0.9, (50, 0, 60, 10)))
    c = claim("count", "dog", count=count, count_min=count_min)
    verify([c], det, None)
    assert c.verdict == verdict and c.evidence["count"] == 2


def test_weak_boxes_make_a_count_uncertain():
    det = seen(("dog", 0.9, (0, 0, 10, 10)), ("dog", 0.15, (20, 0, 30, 10)))
    two, three, several = claim("count", count=2), claim("count", count=3), claim("count", count_min=2)
    verify([two, three, several], det, None)
    assert [two.verdict, three.verdict, several.verdict] == ["unverifiable", "contradicted", "unverifiable"]
    assert three.evidence["count"] == 1


def test_counts_from_annotations_without_boxes():
    no_box = (0.0, 0.0, 0.0, 0.0)
    instances = AnnotatedDetections([Detection("person", 1.0, no_box)] * 3, None, VOCAB, has_boxes=False)
    presence = AnnotatedDetections(
        [Detection("person", 1.0, no_box)], None, VOCAB, has_boxes=False, instances=False
    )
    c = claim("count", "person", count=3)
    verify([c], instances, None)
    assert c.verdict == "supported" and c.evidence["count"] == 3 and "boxes" not in c.evidence
    verify([c], presence, None)
    assert c.verdict == "unverifiable" and "count" not in c.evidence
    absent = claim("count", "dog", count=2)
    verify([absent], presence, None)
    assert absent.verdict == "contradicted" and absent.evidence["count"] == 0


# -- colours ---------------------------------------------------------------------------------

SWATCHES = {
    "red": (210, 25, 30),
    "orange": (250, 140, 20),
    "yellow": (245, 225, 40),
    "green": (40, 160, 60),
    "blue": (30, 70, 210),
    "purple": (110, 30, 150),
    "pink": (250, 150, 190),
    "brown": (120, 70, 30),
    "black": (15, 15, 15),
    "white": (250, 250, 250),
    "gray": (128, 128, 128),
}


def scene(tmp_path, colour, background=(90, 160, 220), noise=0):
    """A car-shaped patch of ``colour`` (with a darker window and optional pixel noise) on a background."""
    image = Image.new("RGB", (160, 120), background)
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 40, 120, 100), fill=colour)
    draw.rectangle((70, 45, 90, 55), fill=tuple(int(c * 0.7) for c in colour))
    if noise:
        rng = random.Random(1)
        pixels = image.load()
        for x in range(160):
            for y in range(120):
                r, g, b = pixels[x, y]
                pixels[x, y] = tuple(max(0, min(255, v + rng.randint(-noise, noise))) for v in (r, g, b))
    path = tmp_path / f"{colour}.png"
    image.save(path)
    return ImageRef(path, path.name)


@pytest.mark.parametrize("name", COLOURS)
def test_each_colour_is_read_from_the_box(tmp_path, name):
    ref = scene(tmp_path, SWATCHES[name], noise=8)
    det = seen(("car", 0.9, (36, 36, 124, 104)), size=(160, 120))
    right = claim("attribute", "car", attribute=name)
    verify([right], det, ref)
    assert right.verdict == "supported", right.evidence
    assert right.evidence["attribute"] == name
    # a colour far from it (not a neighbour) is contradicted, and the evidence says the real one
    wrong_name = next(
        c for c in COLOURS if c != name and c not in NEIGHBOURS[name] and name not in NEIGHBOURS[c]
    )
    wrong = claim("attribute", "car", attribute=wrong_name)
    verify([wrong], det, ref)
    assert wrong.verdict == "contradicted", (wrong_name, wrong.evidence)
    assert wrong.evidence["attribute"] == name and wrong.evidence["colours"][name] > 0.5


def test_neighbouring_colours_are_not_contradicted(tmp_path):
    ref = scene(tmp_path, SWATCHES["red"])
    det = seen(("car", 0.9, (40, 40, 120, 100)), size=(160, 120))
    orange = claim("attribute", "car", attribute="orange")
    verify([orange], det, ref)
    assert orange.verdict == "unverifiable"


def test_colour_of_any_instance_supports(tmp_path):
    image = Image.new("RGB", (200, 100), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((10, 10, 60, 60), fill=SWATCHES["blue"])
    draw.rectangle((110, 10, 160, 60), fill=SWATCHES["red"])
    path = tmp_path / "two.png"
    image.save(path)
    det = seen(("car", 0.9, (10, 10, 60, 60)), ("car", 0.5, (110, 10, 160, 60)))
    red, yellow = claim("attribute", "car", attribute="red"), claim("attribute", "car", attribute="yellow")
    verify([red, yellow], det, ImageRef(path))
    assert red.verdict == "supported" and red.evidence["box"] == [110, 10, 160, 60]
    assert yellow.verdict == "contradicted" and yellow.evidence["attribute"] == "blue"  # the best-scoring car


def test_colour_needs_pixels_boxes_and_a_colour(tmp_path):
    ref = scene(tmp_path, SWATCHES["green"])
    det = seen(("car", 0.9, (40, 40, 120, 100)), size=(160, 120))
    cases = [
        (claim("attribute", "car", attribute="green"), None),  # no image
        (claim("attribute", "car", attribute="green"), ImageRef(None, "123")),  # annotation key only
        (claim("attribute", "car", attribute="shiny"), ref),  # not a colour
    ]
    for c, image in cases:
        verify([c], det, image)
        assert c.verdict == "unverifiable", c.evidence
    boxless = AnnotatedDetections([Detection("car", 1.0, (0, 0, 0, 0))], None, VOCAB, has_boxes=False)
    c = claim("attribute", "car", attribute="green")
    verify([c], boxless, ref)
    assert c.verdict == "unverifiable" and "boxes" in c.evidence["reason"]
    absent = claim("attribute", "dog", attribute="green")
    verify([absent], det, ref)
    assert absent.verdict == "contradicted"


def test_colour_synonyms_and_pixels():
    assert canonical_colour("grey") == "gray" and canonical_colour("Golden") == "yellow"
    assert canonical_colour("wooden") is None
    for name, rgb in SWATCHES.items():
        assert colour_of_rgb(rgb) == name
    assert colour_fractions(Image.new("RGB", (10, 10)), (5, 5, 5, 5)) == {}


# -- relations -------------------------------------------------------------------------------

# subject box, target box, the relation, expected +1 / -1 / 0
GEOMETRY = [
    ((0, 40, 20, 60), (60, 40, 80, 60), "left of", 1),
    ((60, 40, 80, 60), (0, 40, 20, 60), "left of", -1),
    ((40, 40, 60, 60), (42, 0, 62, 20), "left of", 0),  # centres aligned horizontally
    ((60, 40, 80, 60), (0, 40, 20, 60), "right of", 1),
    ((0, 40, 20, 60), (60, 40, 80, 60), "right of", -1),
    ((40, 0, 60, 20), (40, 60, 60, 80), "above", 1),
    ((40, 60, 60, 80), (40, 0, 60, 20), "above", -1),
    ((40, 60, 60, 80), (40, 0, 60, 20), "below", 1),
    ((40, 0, 60, 20), (40, 60, 60, 80), "below", -1),
    ((40, 30, 60, 50), (0, 45, 100, 100), "on", 1),  # a cup on a table
    ((30, 30, 60, 60), (0, 0, 100, 100), "on", 1),  # a cat on a bed, from above
    ((150, 30, 170, 50), (0, 45, 100, 100), "on", -1),  # beside the table
    ((40, 100, 60, 120), (0, 45, 100, 90), "on", -1),  # under it
    ((30, 60, 60, 90), (0, 0, 100, 100), "on", 0),
    ((30, 60, 60, 90), (0, 40, 100, 90), "under", 1),  # a dog under a table
    ((30, 0, 60, 30), (0, 40, 100, 90), "under", -1),
    ((150, 60, 170, 90), (0, 40, 100, 90), "under", -1),
    ((0, 0, 20, 40), (25, 0, 45, 40), "next to", 1),
    ((0, 0, 20, 40), (10, 0, 30, 40), "next to", 1),  # overlapping
    ((0, 0, 20, 40), (150, 0, 170, 40), "next to", -1),
    ((0, 0, 20, 40), (50, 0, 70, 40), "next to", 0),
    ((20, 20, 60, 100), (30, 0, 80, 70), "in front of", 1),
    ((30, 0, 80, 70), (20, 20, 60, 100), "in front of", 0),  # never contradicted
    ((0, 0, 10, 10), (50, 50, 60, 60), "in front of", 0),
    ((30, 0, 80, 70), (20, 20, 60, 100), "behind", 1),
    ((20, 20, 60, 100), (30, 0, 80, 70), "behind", 0),
]


@pytest.mark.parametrize("s, t, relation, expected", GEOMETRY)
def test_relation_geometry(s, t, relation, expected):
    assert relation_holds(relation, s, t) == expected


def test_every_relation_has_a_definition_and_a_case():
    assert {case[2] for case in GEOMETRY} == set(RELATIONS)
    with pytest.raises(ValueError, match="known"):
        relation_holds("inside", (0, 0, 1, 1), (0, 0, 2, 2))


def test_describe():
    assert describe((0, 0, 10, 10), (50, 0, 60, 10)) == "left of"
    assert describe((50, 0, 60, 10), (0, 0, 10, 10)) == "right of"
    assert describe((0, 0, 10, 10), (0, 50, 10, 60)) == "above"
    assert describe((0, 50, 10, 60), (0, 0, 10, 10)) == "below"


def test_relation_claims():
    det = seen(
        ("cup", 0.9, (20, 30, 40, 50)),
        ("laptop", 0.8, (100, 20, 180, 60)),
        ("person", 0.9, (0, 0, 30, 100)),
        ("person", 0.9, (170, 0, 200, 100)),
        ("dining table", 0.7, (0, 45, 200, 100)),
    )
    cases = {
        ("cup", "left of", "laptop"): "supported",
        ("cup", "right of", "laptop"): "contradicted",
        ("cup", "on", "dining table"): "supported",
        ("laptop", "above", "cup"): "unverifiable",
        ("person", "left of", "laptop"): "supported",  # one of the two people is
        ("person", "next to", "person"): "contradicted",  # the two people are far apart
        ("cup", "next to", "dog"): "contradicted",  # no dog: the relation cannot hold
        ("cup", "next to", "giraffe"): "unverifiable",
        ("cup", "inside", "laptop"): "unverifiable",
        ("cup", "on", None): "unverifiable",
    }
    claims = {key: claim("relation", key[0], relation=key[1], target=key[2]) for key in cases}
    verify(list(claims.values()), det, None)
    for key, expected in cases.items():
        assert claims[key].verdict == expected, (key, claims[key].evidence)
    wrong = claims[("cup", "right of", "laptop")].evidence
    assert wrong["relation"] == "left of" and wrong["subject_box"] == [20, 30, 40, 50]
    assert claims[("cup", "next to", "dog")].evidence["missing"] == "target"
    for c in claims.values():
        json.dumps(c.to_json())


def test_relations_need_boxes():
    boxless = AnnotatedDetections(
        [Detection("cup", 1.0, (0, 0, 0, 0)), Detection("laptop", 1.0, (0, 0, 0, 0))],
        None,
        VOCAB,
        has_boxes=False,
    )
    c = claim("relation", "cup", relation="left of", target="laptop")
    verify([c], boxless, None)
    assert c.verdict == "unverifiable"


def test_relation_to_the_same_class_needs_two():
    det = seen(("dog", 0.9, (0, 0, 20, 20)), ("dog", 0.9, (25, 0, 45, 20)))
    c = claim("relation", "dog", relation="next to", target="dog")
    verify([c], det, None)
    assert c.verdict == "supported"
    single = seen(("dog", 0.9, (0, 0, 20, 20)))
    verify([c], single, None)
    assert c.verdict == "unverifiable"
