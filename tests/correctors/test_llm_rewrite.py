"""The LLM rewriter's plumbing, with a tiny random Llama and a word-level tokenizer built offline.

What is tested: the model is loaded from a folder, prompted with the answer and the verdicts, its
output decoded, validated against the verdicts, and replaced by the rule rewrite when it breaks
them; accepted outputs come back with edits into the original text. Not the model's quality.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("spacy")

from halluguard.correctors.claims import extract_claims  # noqa: E402
from halluguard.correctors.llm_rewrite import LLMRewriter, build_prompt, diff_edits  # noqa: E402
from halluguard.correctors.nlp import SpacyModelMissing, load_spacy  # noqa: E402
from halluguard.correctors.rewrite import apply_edits, rewrite  # noqa: E402
from halluguard.correctors.vocabulary import Vocabulary  # noqa: E402

TEXT = "A dog and a cat are on the grass."
WORDS = (
    "a dog and cat are on the grass . there is one two red blue frisbee correct not in image remove it "
    "description : corrected checked against you descriptions of images"
).split()


@pytest.fixture(scope="module")
def nlp():
    try:
        return load_spacy()
    except SpacyModelMissing as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.coco(wordnet=False)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A random 1-layer Llama and a word-level fast tokenizer, saved like any hub model."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    special = ["<unk>", "<pad>", "<s>", "</s>"]
    vocab = {w: i for i, w in enumerate(special + sorted(set(WORDS)))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
        pad_token_id=1, bos_token_id=2, eos_token_id=3,
    )  # fmt: skip
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _claims(vocab, nlp, contradicted=("cat",)):
    claims = extract_claims([TEXT], vocab, nlp)[0]
    for claim in claims:
        claim.verdict = "contradicted" if claim.label in contradicted else "supported"
    return claims


def _answering(rewriter: LLMRewriter, answer: str):
    """Make the model 'answer' ``answer`` (its token ids after the prompt), through the real decode."""
    original = rewriter.model.generate

    def generate(input_ids, **kwargs):
        ids = rewriter.tokenizer(answer, add_special_tokens=False, return_tensors="pt")["input_ids"]
        return torch.cat([input_ids, ids], dim=1)

    rewriter.model.generate = generate
    return original


def test_random_model_output_falls_back_to_rules(model_dir, vocab, nlp) -> None:
    rewriter = LLMRewriter(str(model_dir), vocabulary=vocab, nlp=nlp, max_new_tokens=12)
    claims = _claims(vocab, nlp)
    corrected, edits = rewriter(TEXT, claims)
    assert rewriter.calls == 1 and isinstance(rewriter.last_output, str)
    assert rewriter.fallbacks == 1 and rewriter.last_reason
    assert (corrected, edits) == rewrite(TEXT, claims, nlp=nlp)
    assert corrected == "A dog is on the grass."


def test_valid_output_is_accepted_with_edits_into_the_original(model_dir, vocab, nlp) -> None:
    rewriter = LLMRewriter(str(model_dir), vocabulary=vocab, nlp=nlp)
    _answering(rewriter, "a dog is on the grass .")
    corrected, edits = rewriter(TEXT, _claims(vocab, nlp))
    assert rewriter.fallbacks == 0 and rewriter.last_reason is None
    assert corrected == "a dog is on the grass ."  # the word-level tokenizer's own spelling
    assert apply_edits(TEXT, edits) == corrected
    assert all(TEXT[e.start : e.end] == e.before and e.reason == "llm rewrite" for e in edits)


def test_output_that_drops_a_supported_object_is_refused(model_dir, vocab, nlp) -> None:
    rewriter = LLMRewriter(str(model_dir), vocabulary=vocab, nlp=nlp)
    _answering(rewriter, "there is grass .")
    corrected, _ = rewriter(TEXT, _claims(vocab, nlp))
    assert rewriter.fallbacks == 1 and "dropped supported object(s): dog" in rewriter.last_reason
    assert corrected == "A dog is on the grass."


def test_output_that_keeps_a_contradicted_object_is_refused(model_dir, vocab, nlp) -> None:
    rewriter = LLMRewriter(str(model_dir), vocabulary=vocab, nlp=nlp)
    _answering(rewriter, "a dog and a cat are on the grass .")
    rewriter(TEXT, _claims(vocab, nlp))
    assert rewriter.fallbacks == 1 and "not in the image: cat" in rewriter.last_reason


def test_nothing_to_fix_does_not_call_the_model(model_dir, vocab, nlp) -> None:
    rewriter = LLMRewriter(str(model_dir), vocabulary=vocab, nlp=nlp)
    assert rewriter(TEXT, _claims(vocab, nlp, contradicted=())) == (TEXT, [])
    assert rewriter.calls == 0


def test_prompt_lists_the_verdicts(vocab, nlp) -> None:
    claims = extract_claims(["There are three dogs and a red cat."], vocab, nlp)[0]
    for claim in claims:
        claim.verdict = "supported"
        if claim.kind == "count":
            claim.verdict, claim.evidence = "contradicted", {"count": 2}
        if claim.kind == "attribute":
            claim.verdict, claim.evidence = "contradicted", {"attribute": "white"}
    prompt = build_prompt("There are three dogs and a red cat.", claims)
    assert "Description: There are three dogs and a red cat." in prompt
    assert '- "three dogs": wrong number, there are 2' in prompt
    assert '- "red cat": wrong colour, it is white' in prompt
    assert '- "dogs": correct' in prompt
    assert prompt.endswith("Corrected description:")


def test_diff_edits_round_trip() -> None:
    original = "A dog, a cat and a frisbee.\n\nThe sky is blue."
    new = "A dog and a frisbee.\n\nThe sky is grey."
    edits = diff_edits(original, new, "x")
    assert apply_edits(original, edits) == new
    assert all(original[e.start : e.end] == e.before for e in edits)


def test_unloadable_model_says_what_to_do(tmp_path) -> None:
    with pytest.raises(ValueError, match="local folder"):
        LLMRewriter(str(tmp_path / "missing"))
