"""The rewriter's English helpers against the ``inflect`` library, on the COCO vocabulary and hard cases.

    pip install inflect && python benchmarks/inflection_vs_inflect.py

Prints how many of the vocabulary's single-word nouns get another article, plural or singular from
``inflect`` than from :mod:`halluguard.correctors.grammar`, with examples, then a table of hard cases
and inflect's import time. Figures and the decision (ours kept) are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from importlib.metadata import version

HARD = ("MRI urinal urban unicorn hour SUV LED 8 18-wheeler ewe utensil unimportant houri one-way "
        "half giraffe person ski mouse knife bus glass sheep species gentleman cattle broccoli thief safe "
        "cafe crisis echo").split()
HARD_PLURALS = ("halves SUVs giraffes people skis mice knives buses glasses sheep species jeans lens "
                "crises").split()


def main() -> None:
    started = time.perf_counter()
    code = "import time; t = time.perf_counter(); import inflect; print(time.perf_counter() - t)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds = float(done.stdout)
    import inflect

    from halluguard.correctors import grammar
    from halluguard.correctors.vocabulary import Vocabulary

    engine = inflect.engine()

    def their_singular(word: str) -> str:
        found = engine.singular_noun(word)
        return word if found is False else found

    table = Vocabulary.coco().to_json()
    phrases = [p for label, group in table.items() if label != "_not_objects" for p in group]
    words = sorted({p for p in phrases if " " not in p})
    plurals = [grammar.plural_noun(w) for w in words]
    rows = [
        ("article", words, grammar.article_for, lambda w: engine.a(w).split(" ", 1)[0]),
        ("plural", words, grammar.plural_noun, engine.plural_noun),
        ("singular (of our plural)", plurals, grammar.singular_noun, their_singular),
    ]
    print(f"inflect {version('inflect')} import: {seconds:.2f} s in a fresh interpreter")
    for name, items, ours, theirs in rows:
        differ = [(w, ours(w), theirs(w)) for w in items if ours(w) != theirs(w)]
        print(f"\n{name}: {len(differ)} of {len(items)} words differ (word, ours, inflect); first 25:")
        print("  " + ", ".join(f"{w}: {a}/{b}" for w, a, b in differ[:25]))
    print("\nhard cases (ours | inflect):")
    for w in HARD:
        print(f"  {w:>12}  {grammar.article_for(w)} {grammar.plural_noun(w):<11} | {engine.a(w).split()[0]} "
              f"{engine.plural_noun(w)}")
    for w in HARD_PLURALS:
        print(f"  {w:>12}  {grammar.singular_noun(w):<11} | {their_singular(w)}")
    print(f"\n{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
