"""The claims component: a real spaCy factory, repairs inside the pipeline, the user's pipeline used
everywhere, nothing cached between calls."""

from __future__ import annotations

import json

import pytest

spacy = pytest.importorskip("spacy")

from spacy.language import Language  # noqa: E402

from halluguard.correctors import nlp as nlp_module  # noqa: E402
from halluguard.correctors.claims import extract_claims  # noqa: E402
from halluguard.correctors.component import COMPONENT, parse_claims  # noqa: E402
from halluguard.correctors.nlp import EXCLUDED, MODEL_NAMES, SpacyModelMissing, load_spacy  # noqa: E402
from halluguard.correctors.vocabulary import Vocabulary  # noqa: E402
from halluguard.correctors.woodpecker import Woodpecker  # noqa: E402
from halluguard.images import ImageRef  # noqa: E402
from halluguard.records import Answer  # noqa: E402

#: the small model reads "fork lie" as a compound noun; the component re-parses the sentence
MISTAGGED = "A knife and a fork lie next to the cup."


def fresh_pipeline():
    """A pipeline of its own (the cached one must not be changed by these tests)."""
    for name in MODEL_NAMES:
        try:
            return spacy.load(name, exclude=list(EXCLUDED))
        except OSError:
            continue
    pytest.skip("no English spaCy pipeline installed")


#: the texts the counting component below has seen
COUNTED: list[str] = []


@Language.component("count_docs_for_test")
def count_docs(doc):
    COUNTED.append(doc.text)
    return doc


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.coco(wordnet=False)


def test_the_factory_puts_claims_on_the_doc_and_repairs_the_parse_inside_the_pipeline(vocab):
    nlp = fresh_pipeline()
    plain = [t.tag_ for t in nlp(MISTAGGED)]
    assert plain[4:6] != ["NN", "VBP"]  # the slip the component repairs
    nlp.add_pipe(COMPONENT, config={"vocabulary": {"fork": ["forks"], "knife": [], "cup": []}})
    assert nlp.get_pipe_meta(COMPONENT).assigns[-1] == "doc._.claims"
    doc = nlp(MISTAGGED)
    assert [c.label for c in doc._.claims if c.kind == "object"] == ["knife", "fork", "cup"]
    assert [t.tag_ for t in doc][4:6] == ["NN", "VBP"] and doc[5].dep_ == "ROOT"
    # a vocabulary given per call, as an object
    only_cups = Vocabulary.empty().extend({"cup": []})
    docs = list(nlp.pipe([MISTAGGED], component_cfg={COMPONENT: {"vocabulary": only_cups}}))
    assert [c.label for c in docs[0]._.claims] == ["cup"]


def test_extraction_leaves_the_given_pipeline_as_it_was(vocab):
    nlp = load_spacy()
    before = list(nlp.pipe_names)
    claims = extract_claims([MISTAGGED], vocab, nlp)[0]
    assert [c.label for c in claims if c.kind == "object"] == ["knife", "fork", "cup"]
    assert nlp.pipe_names == before and COMPONENT not in nlp.pipe_names
    assert [t.tag_ for t in nlp(MISTAGGED)][4:6] != ["NN", "VBP"]  # its parse is not repaired


def test_same_claims_with_the_component_in_the_pipeline_or_run_after_it(coco500, vocab):
    lines = (coco500 / "llava15_greedy.jsonl").read_text().splitlines()[:60]
    texts = [json.loads(line)["caption"] for line in lines]
    after = [doc._.claims for doc in parse_claims(texts, vocab, load_spacy())]
    nlp = fresh_pipeline()
    nlp.add_pipe(COMPONENT)
    inside = [doc._.claims for doc in parse_claims(texts, vocab, nlp)]
    assert inside == after and sum(map(len, after)) > 300


def test_the_correctors_own_pipeline_is_used_for_every_stage(tmp_path, monkeypatch, vocab):
    """Given its own pipeline, the corrector never loads the default one: not to extract, not to
    rewrite (also for the per-record path that parses again), and every text goes through it."""
    nlp = fresh_pipeline()
    nlp.add_pipe("count_docs_for_test", last=True)

    def no_default(*_, **__):
        raise SpacyModelMissing("the default pipeline must not be loaded here")

    monkeypatch.setattr(nlp_module, "load_spacy", no_default)
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"1": ["dog", "frisbee"]}))
    corrector = Woodpecker.from_spec(f"annotations:{labels}", detector_labels="coco")
    corrector.nlp, corrector.vocabulary = nlp, vocab
    answer = Answer("A dog, a cat and a frisbee are on the grass.", {}, 1, image_id=1)
    COUNTED.clear()
    [result] = corrector.correct([answer], [ImageRef(None, "1")])
    assert result.corrected == "A dog and a frisbee are on the grass." and COUNTED == [answer.text]
    # the stages one by one, as a cluster runs them, without the parse in between: parsed again, by `nlp`
    claims = corrector.extract([answer.text])
    found = corrector.detect([ImageRef(None, "1")], claims)
    COUNTED.clear()
    [again] = corrector.settle_each([answer], claims, found, [ImageRef(None, "1")])
    assert again.corrected == result.corrected and COUNTED == [answer.text]
