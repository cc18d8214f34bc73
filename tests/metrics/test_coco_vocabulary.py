"""The CHAIR vocabulary: synonym table, tokenizer, both singularisers, mentions with offsets."""

from __future__ import annotations

import pytest

from halluguard.metrics import coco_vocabulary as V
from halluguard.metrics.official_text import singularize as official_singularize

# The 80 MS-COCO detection classes, written out independently of the shipped table.
COCO80 = """person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant stop_sign
parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella handbag tie
suitcase frisbee skis snowboard sports_ball kite baseball_bat baseball_glove skateboard surfboard
tennis_racket bottle wine_glass cup fork knife spoon bowl banana apple sandwich orange broccoli carrot
hot_dog pizza donut cake chair couch potted_plant bed dining_table toilet tv laptop mouse remote keyboard
cell_phone microwave oven toaster sink refrigerator book clock vase scissors teddy_bear hair_drier
toothbrush""".split()
COCO80 = [name.replace("_", " ") for name in COCO80]


def test_table_has_the_80_coco_classes():
    assert len(COCO80) == 80
    assert sorted(V.COCO_CLASSES) == sorted(COCO80)
    for name in COCO80:
        assert V.canonical(name) == name


@pytest.mark.parametrize(
    ("word", "label"),
    [
        ("kitten", "cat"),
        ("sofa", "couch"),
        ("table", "dining table"),
        ("television", "tv"),
        ("puppies", "dog"),
        ("motorbike", "motorcycle"),
        ("iphone", "cell phone"),
        ("teddybear", "teddy bear"),
        ("lorry", "truck"),
        ("cheesecake", "cake"),
        ("motor bike", "motorcycle"),
        ("skateboarder", "person"),
        ("sky", None),
    ],
)
def test_synonyms(word, label):
    assert V.canonical(word) == label


def test_tokenize_offsets_point_into_the_text():
    text = "A man's T-shirt, two hot-dogs; 3.5 km\n\nThen:  BUSES!"
    tokens = V.tokenize(text)
    assert [t.text for t in tokens] == [
        "a",
        "man",
        "'s",
        "t-shirt",
        ",",
        "two",
        "hot-dogs",
        ";",
        "3.5",
        "km",
        "then",
        ":",
        "buses",
        "!",
    ]
    for t in tokens:
        assert text[t.start : t.end].lower() == t.text


@pytest.mark.parametrize(
    ("plural", "singular"),
    [
        ("people", "person"),
        ("men", "man"),
        ("women", "woman"),
        ("policemen", "policeman"),
        ("children", "child"),
        ("knives", "knife"),
        ("mice", "mouse"),
        ("geese", "goose"),
        ("oxen", "ox"),
        ("buses", "bus"),
        ("bus", "bus"),
        ("skis", "ski"),
        ("scissors", "scissors"),
        ("benches", "bench"),
        ("sandwiches", "sandwich"),
        ("toothbrushes", "toothbrush"),
        ("glasses", "glass"),
        ("ponies", "pony"),
        ("puppies", "puppy"),
        ("ties", "tie"),
        ("canoes", "canoe"),
        ("taxis", "taxi"),
        ("shoes", "shoe"),
        ("tomatoes", "tomato"),
        ("shelves", "shelf"),
        ("gloves", "glove"),
        ("vases", "vase"),
        ("sheep", "sheep"),
        ("giraffes", "giraffe"),
        ("tennis", "tennis"),
        ("cattle", "cattle"),
        ("doughnuts", "doughnut"),
    ],
)
def test_english_singulariser(plural, singular):
    assert V.singularize(plural) == singular


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("bus", "bu"),
        ("buses", "bus"),
        ("ties", "ty"),
        ("glass", "glas"),
        ("glasses", "glass"),
        ("women", "woman"),
        ("children", "child"),
        ("knives", "knife"),
        ("scissors", "scissors"),
        ("cookies", "cookies"),  # pattern returns the -ie plurals it lists unchanged
        ("collies", "collies"),
        ("mice", "mouse"),
        ("canoes", "cano"),
        ("skis", "ski"),
        ("luggage", "luggage"),
    ],
)
def test_standard_singulariser_reproduces_the_reference_quirks(word, expected):
    assert official_singularize(word) == expected


def _plural(word: str) -> str:
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def test_both_singularisers_agree_on_coco_plurals_except_documented_quirks():
    words = {w.split()[-1] for w in V.synonyms()}
    disagree = {}
    for word in sorted(words):
        plural = _plural(word)
        if V.singularize(plural) != official_singularize(plural):
            disagree[plural] = (V.singularize(plural), official_singularize(plural))
    # Where they differ, English finds the class and the standard one finds the same class or nothing.
    for plural, (english, standard) in disagree.items():
        assert V.canonical(english) is not None, plural
        assert V.canonical(standard) in (None, V.canonical(english)), (plural, english, standard)
    assert {"ties", "canoes"} <= set(disagree)
    # Singular vocabulary words come back unchanged in English, except plural synonyms (same class).
    single = {w for w in V.synonyms() if " " not in w}
    changed = [w for w in sorted(single) if V.singularize(w) != w]
    assert changed == ["children", "oxen", "people", "skis"]
    assert all(V.canonical(V.singularize(w)) == V.canonical(w) for w in changed)
    # The standard one also cuts singular words ending in s: the documented quirk.
    lost = {w for w in single if V.canonical(official_singularize(w)) is None}
    assert lost == {"airbus", "bus", "minibus"}


def test_double_words_and_special_rules():
    labels = lambda text: [m.label for m in V.find_mentions(text)]  # noqa: E731
    assert labels("A hot dog and a teddy bear.") == ["hot dog", "teddy bear"]
    assert labels("A baby elephant and an adult giraffe.") == ["elephant", "giraffe"]
    assert labels("A passenger train.") == ["train"]
    assert labels("A man in a bow tie.") == ["person", "tie"]
    assert labels("A toilet seat.") == ["toilet"]
    assert labels("The seat of the toilet is up.") == ["toilet"]
    assert labels("A seat by the window.") == ["chair"]
    assert labels("Two traffic lights near a stop sign.") == ["traffic light", "stop sign"]
    assert labels("It is hot. Dogs play.") == ["dog"]  # punctuation stops a two-word object
    assert labels("A dog, another dog, and a puppy.") == ["dog", "dog", "dog"]
    assert labels("The train tracks.") == []


def test_mentions_carry_offsets_into_the_original():
    text = "Two Hot Dogs next to a sofa."
    mentions = V.find_mentions(text)
    assert [(m.word, m.label, text[m.start : m.end]) for m in mentions] == [
        ("hot dog", "hot dog", "Hot Dogs"),
        ("sofa", "couch", "sofa"),
    ]


def test_standard_mode_misses_a_single_bus_english_mode_does_not():
    assert V.caption_to_objects("A bus and two buses.") == ["bus", "bus"]
    assert V.caption_to_objects("A bus and two buses.", standard=True) == ["bus"]
    assert V.caption_to_objects("Two wine glasses.", standard=True) == ["wine glass"]
