"""Speed of the text stages (claims + rewrite) on 500 real LLaVA-1.5 captions, detections cached.

    python benchmarks/bench_text_stages.py             # table: answers/s, 1 and 2 processes
    pytest benchmarks/bench_text_stages.py --benchmark-only

The captions are ``../shared/data/coco500/llava15_greedy.jsonl`` (skipped when absent). Verdicts come
from the COCO ground truth (what the annotations detector returns), so the rewriter does the real
amount of work: about half the captions need edits. Stages timed:

- ``parse``: spaCy ``nlp.pipe`` (tagger + parser of en_core_web_sm; NER, attribute ruler and
  lemmatizer are not loaded);
- ``claims``: claim extraction from the parsed documents;
- ``rewrite``: the rule rewriter, reusing the parse (the pipeline's order: claims first);
- ``text stages``: all three, answers per second from raw text to corrected text.

Each figure is the best of ``--rounds`` runs (the least disturbed by other load on the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco500"


def load(n: int = 500) -> tuple[list[str], list[set[str]]]:
    rows = [json.loads(line) for line in (DATA / "llava15_greedy.jsonl").read_text().splitlines()[:n]]
    truth = json.loads((DATA / "gt_objects.json").read_text())
    return [r["caption"] for r in rows], [set(truth[str(r["image_id"])]) for r in rows]


def oracle(claims, present: set[str]) -> None:
    for claim in claims:
        if claim.kind == "object":
            claim.verdict = "supported" if claim.label in present else "contradicted"


def run_text_stages(texts, truth, vocab, nlp, n_process: int = 1) -> tuple[dict[str, float], int]:
    """Seconds per stage for the whole list, and the number of edits made."""
    from halluguard.correctors.component import claim_extractor
    from halluguard.correctors.rewrite import rewrite

    extractor = claim_extractor(nlp)
    t0 = time.perf_counter()
    docs = list(nlp.pipe(texts, batch_size=64, n_process=n_process))
    t1 = time.perf_counter()
    docs = [extractor(doc, vocab) for doc in docs]
    all_claims = [doc._.claims for doc in docs]
    t2 = time.perf_counter()
    edits = 0
    for text, doc, claims, present in zip(texts, docs, all_claims, truth):
        oracle(claims, present)
        edits += len(rewrite(text, claims, doc=doc)[1])
    t3 = time.perf_counter()
    return {"parse": t1 - t0, "claims": t2 - t1, "rewrite": t3 - t2, "text stages": t3 - t0}, edits


def best_of(rounds: int, texts, truth, vocab, nlp, n_process: int) -> dict[str, float]:
    best: dict[str, float] = {}
    for _ in range(rounds):
        seconds, _ = run_text_stages(texts, truth, vocab, nlp, n_process)
        best = {k: min(v, best.get(k, v)) for k, v in seconds.items()}
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, nargs="*", default=[1, 2])
    args = parser.parse_args()
    if not (DATA / "llava15_greedy.jsonl").exists():
        raise SystemExit(f"{DATA} is not present")
    from halluguard.correctors.nlp import load_spacy
    from halluguard.correctors.vocabulary import Vocabulary

    texts, truth = load()
    vocab, nlp = Vocabulary.default(), load_spacy()
    list(nlp.pipe(texts[:32]))  # warm-up
    words = sum(len(t.split()) for t in texts)
    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{len(texts)} captions, {words / len(texts):.0f} words each; {os.cpu_count()} CPUs, load {load_avg:.1f}; "
        f"spaCy {nlp.meta.get('name')} {nlp.meta.get('version')}; WordNet vocabulary: {vocab.wordnet_used}"
    )
    print(f"{'processes':>9}  {'parse':>8}  {'claims':>8}  {'rewrite':>8}  {'text stages':>12}   (answers/s)")
    for n in args.processes:
        best = best_of(args.rounds, texts, truth, vocab, nlp, n)
        rate = {k: len(texts) / v for k, v in best.items()}
        print(
            f"{n:>9}  {rate['parse']:>8.0f}  {rate['claims']:>8.0f}  {rate['rewrite']:>8.0f}  {rate['text stages']:>12.0f}"
        )


# ---------------------------------------------------------------------- pytest-benchmark


@pytest.fixture(scope="module")
def setup():
    if not (DATA / "llava15_greedy.jsonl").exists():
        pytest.skip("../shared/data/coco500 is not present")
    pytest.importorskip("spacy")
    from halluguard.correctors.nlp import SpacyModelMissing, load_spacy
    from halluguard.correctors.vocabulary import Vocabulary

    try:
        nlp = load_spacy()
    except SpacyModelMissing as error:
        pytest.skip(str(error))
    texts, truth = load()
    return texts, truth, Vocabulary.default(), nlp


def test_text_stages_one_process(benchmark, setup) -> None:
    texts, truth, vocab, nlp = setup
    seconds, edits = benchmark.pedantic(
        run_text_stages, args=(texts, truth, vocab, nlp, 1), rounds=2, iterations=1
    )
    benchmark.extra_info["answers_per_s"] = round(len(texts) / seconds["text stages"], 1)
    assert edits > 100


def test_claims_and_rewrite_without_parse(benchmark, setup) -> None:
    from halluguard.correctors.claims import claims_from_doc
    from halluguard.correctors.nlp import parse
    from halluguard.correctors.rewrite import rewrite

    texts, truth, vocab, nlp = setup
    docs = parse(texts, nlp)

    def work() -> int:
        edits = 0
        for text, doc, present in zip(texts, docs, truth):
            claims = claims_from_doc(doc, vocab)
            oracle(claims, present)
            edits += len(rewrite(text, claims, doc=doc)[1])
        return edits

    assert benchmark.pedantic(work, rounds=3, iterations=1) > 100


if __name__ == "__main__":
    main()
