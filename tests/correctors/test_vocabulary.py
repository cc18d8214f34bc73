"""The vocabulary: COCO labels, synonyms, plurals, user tables, and WordNet when it is installed."""

from __future__ import annotations

import json

import pytest

from halluguard.correctors import vocabulary as vocabulary_module
from halluguard.correctors import wordnet as wordnet_module
from halluguard.correctors.vocabulary import Vocabulary, pluralize
from halluguard.metrics.coco_vocabulary import COCO_CLASSES

ULTRALYTICS_NAMES = (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant stop_sign "
    "parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella handbag "
    "tie suitcase frisbee skis snowboard sports_ball kite baseball_bat baseball_glove skateboard surfboard "
    "tennis_racket bottle wine_glass cup fork knife spoon bowl banana apple sandwich orange broccoli carrot "
    "hot_dog pizza donut cake chair couch potted_plant bed dining_table toilet tv laptop mouse remote "
    "keyboard cell_phone microwave oven toaster sink refrigerator book clock vase scissors teddy_bear "
    "hair_drier toothbrush"
).split()


@pytest.fixture(scope="module")
def coco() -> Vocabulary:
    return Vocabulary.coco(wordnet=False)


def test_labels_are_the_80_ultralytics_coco_names(coco: Vocabulary) -> None:
    names = {n.replace("_", " ") for n in ULTRALYTICS_NAMES}
    assert len(names) == 80
    assert coco.labels == names == set(COCO_CLASSES)


@pytest.mark.parametrize(
    "phrase,label",
    [
        ("dog", "dog"), ("Dogs", "dog"), ("puppy", "dog"), ("puppies", "dog"), ("kitten", "cat"),
        ("sedan", "car"), ("people", "person"), ("men", "person"), ("skier", "person"),
        ("children", "person"), ("hot dog", "hot dog"), ("hot-dogs", "hot dog"), ("teddy bears", "teddy bear"),
        ("cell phone", "cell phone"), ("cellphones", "cell phone"), ("fire hydrant", "fire hydrant"),
        ("dining tables", "dining table"), ("table", "dining table"), ("television", "tv"),
        ("sofa", "couch"), ("motorbike", "motorcycle"), ("knives", "knife"), ("buses", "bus"),
        ("skis", "skis"), ("ski", "skis"), ("microwave oven", "microwave"), ("toilet seat", "toilet"),
        ("hair dryer", "hair drier"), ("mug", "cup"),
    ],
)  # fmt: skip
def test_surface_forms(coco: Vocabulary, phrase: str, label: str) -> None:
    assert coco.lookup(phrase) == label
    assert phrase in coco


@pytest.mark.parametrize("phrase", ["car seat", "train track", "home plate", "sky", "glove", ""])
def test_not_objects(coco: Vocabulary, phrase: str) -> None:
    assert coco.lookup(phrase) is None
    assert phrase not in coco


def test_entry_tells_unknown_from_not_an_object(coco: Vocabulary) -> None:
    assert coco.entry(["car", "seat"]) == (True, None)
    assert coco.entry(["sky"]) == (False, None)
    assert coco.entry(["puppies"]) == (True, "dog")


def test_extend_and_a_lab_world() -> None:
    lab = Vocabulary.empty().extend({"circle": ["ring", "disc"], "moon": "crescent"})
    assert lab.labels == {"circle", "moon"}
    assert [lab.lookup(w) for w in ("circles", "Rings", "crescents", "moon", "dog")] == [
        "circle", "circle", "moon", "moon", None,
    ]  # fmt: skip
    person_only = Vocabulary.coco(wordnet=False).extend({"person": ["astronaut"]})
    assert person_only.lookup("astronauts") == "person"
    with pytest.raises(ValueError, match="non-empty string"):
        lab.extend({"": ["x"]})
    with pytest.raises(TypeError):
        lab.extend(["circle"])  # type: ignore[arg-type]


def test_file_round_trip(tmp_path) -> None:
    path = tmp_path / "lab.json"
    path.write_text(json.dumps({"circle": ["ring"], "square": ["box"], "_not_objects": ["boxing ring"]}))
    lab = Vocabulary.from_file(path)
    assert lab.lookup("rings") == "circle" and lab.lookup("boxing ring") is None
    lab.save(tmp_path / "again.json")
    again = Vocabulary.from_file(tmp_path / "again.json")
    assert again.to_json() == lab.to_json()
    widened = Vocabulary.from_file(path, base=Vocabulary.coco(wordnet=False))
    assert widened.lookup("ring") == "circle" and widened.lookup("dog") == "dog"


def test_bad_files_say_what_is_expected(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="Expected JSON like"):
        Vocabulary.from_file(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="label -> list of synonyms"):
        Vocabulary.from_file(bad)
    bad.write_text(json.dumps({"circle": [3]}))
    with pytest.raises(ValueError, match="must be strings"):
        Vocabulary.from_file(bad)


@pytest.mark.parametrize(
    "singular,plural",
    [("dog", "dogs"), ("bus", "buses"), ("knife", "knives"), ("person", "people"), ("Man", "Men"),
     ("teddy bear", "teddy bears"), ("cherry", "cherries"), ("sheep", "sheep"), ("toy", "toys"),
     ("policeman", "policemen"), ("human", "humans"), ("box", "boxes"), ("tomato", "tomatoes"), ("TV", "TVS")],
)  # fmt: skip
def test_pluralize(singular: str, plural: str) -> None:
    assert pluralize(singular) == plural


# ---------------------------------------------------------------------- WordNet


def test_lexnames_is_the_wordnet_30_list() -> None:
    lines = wordnet_module.lexnames_text().splitlines()
    assert len(lines) == 45
    assert (
        lines[0] == "00\tadj.all\t3" and lines[18] == "18\tnoun.person\t1" and lines[44] == "44\tadj.ppl\t3"
    )


def test_the_shipped_vocabulary_needs_no_wordnet(tmp_path, monkeypatch) -> None:
    nltk = pytest.importorskip("nltk")
    monkeypatch.setattr(wordnet_module, "_STATE", {})
    monkeypatch.setattr(wordnet_module, "SYSTEM_WORDNET_DIRS", ())
    monkeypatch.setenv("HALLUGUARD_WORDNET_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("HALLUGUARD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "empty")])
    assert wordnet_module.ensure_wordnet() is False
    vocab = Vocabulary.coco()
    assert vocab.wordnet_used and len(vocab) > 5000 and vocab.lookup("limousine") == "car"
    assert not (tmp_path / "cache").exists()  # nothing built at run time
    with pytest.raises(RuntimeError, match="apt-get install wordnet-base wordnet-sense-index"):
        Vocabulary.empty().with_wordnet({"fox": ["fox.n.01"]})


def test_the_shipped_vocabulary() -> None:
    vocab = Vocabulary.coco()
    assert vocab.labels == set(COCO_CLASSES) and len(vocab) > 5000
    assert vocab.to_json() == Vocabulary.from_file(vocabulary_module.SHIPPED_VOCABULARY).to_json()
    assert vocab.dumps() == vocabulary_module.SHIPPED_VOCABULARY.read_text(encoding="utf-8")
    assert {vocab.lookup(w) for w in ("limousine", "station wagon", "ambulance")} == {"car"}
    assert vocab.lookup("german shepherd") == "dog" and vocab.lookup("siamese cat") == "cat"
    # first senses elsewhere, denied, or adjectives too: not objects
    assert [vocab.lookup(w) for w in ("glove", "electric", "closer", "console")] == [None] * 4
    assert vocab.lookup("notebook") == "laptop"  # the CHAIR table wins over WordNet's book
    hand = Vocabulary.coco(wordnet=False)  # the hand tables are part of it, unchanged
    assert all(vocab.entry(phrase.split(" ")) == (True, label) for phrase, label in hand._entries.items())
    assert Vocabulary.default() is Vocabulary.default() and Vocabulary.default().dumps() == vocab.dumps()


def test_digest_follows_the_content() -> None:
    coco = Vocabulary.coco()
    assert coco.digest() == Vocabulary.coco().digest() != Vocabulary.coco(wordnet=False).digest()
    assert coco.copy().extend({"dog": ["wolfhound pup"]}).digest() != coco.digest()


@pytest.fixture
def system_wordnet():
    source = wordnet_module.find_system_wordnet()
    if source is None:
        pytest.skip("no system WordNet (apt-get install wordnet-base wordnet-sense-index)")
    pytest.importorskip("nltk")
    return source


def test_nltk_data_folder_from_the_debian_files(system_wordnet, tmp_path) -> None:
    root = wordnet_module.build_nltk_data(system_wordnet, tmp_path / "nltk_data")
    folder = root / "corpora" / "wordnet"
    assert (folder / "lexnames").read_text() == wordnet_module.lexnames_text()
    for name in ("data.noun", "index.noun", "index.sense", "noun.exc"):
        assert (folder / name).is_file() and not (folder / name).is_symlink()
    assert wordnet_module.build_nltk_data(system_wordnet, tmp_path / "nltk_data") == root  # idempotent


@pytest.mark.slow
def test_the_shipped_file_is_what_the_builder_writes(system_wordnet, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HALLUGUARD_CACHE", str(tmp_path))
    monkeypatch.setattr(wordnet_module, "_STATE", {})
    assert wordnet_module.ensure_wordnet() is True
    rebuilt = wordnet_module.build_coco_vocabulary()
    assert rebuilt.dumps() == vocabulary_module.SHIPPED_VOCABULARY.read_text(encoding="utf-8"), (
        "the COCO tables or WordNet rules changed: python -m halluguard.correctors.wordnet --write"
    )
    assert wordnet_module.main(["--check"]) == 0


def test_wordnet_extends_a_vocabulary(system_wordnet, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HALLUGUARD_CACHE", str(tmp_path))
    monkeypatch.setattr(wordnet_module, "_STATE", {})
    foxes = Vocabulary.empty().with_wordnet({"fox": ["fox.n.01"]})
    assert foxes.wordnet_used and foxes.lookup("arctic foxes") == "fox" and foxes.labels == {"fox"}
    synsets = tmp_path / "synsets.json"
    synsets.write_text(json.dumps({"fox": ["fox.n.01"]}))
    out = tmp_path / "fox.json"
    assert wordnet_module.main(["--synsets", str(synsets), "--base", "empty", "--write", str(out)]) == 0
    assert Vocabulary.from_file(out).to_json() == foxes.to_json()
    widened = Vocabulary.coco().with_wordnet({"fox": ["fox.n.01"]})  # COCO plus foxes
    assert widened.lookup("kit fox") == "fox" and widened.lookup("limousine") == "car"
