"""The hallucination lab: a seeded visual world, a small captioner and detector trained on it, a harness.

A language prior that outweighs weak visual evidence makes real vision-language models name a fork next
to every knife. The lab builds that failure on purpose, small enough to ship and to run on a CPU:

- :mod:`~halluguard.lab.world`: 64x64 scenes of 10 kinds of shapes in 7 colours, with a co-occurrence
  prior (moon -> star, arrow -> diamond), template captions and ground truth; prior-breaking test scenes.
- :mod:`~halluguard.lab.captioner`: the captioner as a real Hugging Face checkpoint (LLaVA, a word-level
  ``PreTrainedTokenizerFast``, a ``LlavaProcessor``); :mod:`~halluguard.lab.train_captioner` trains it.
- :mod:`~halluguard.lab.train_detector`: the YOLO11n detector of the lab's kinds (ultralytics).
- :mod:`~halluguard.lab.scoring`: CHAIR over the lab's kinds and the prior-driven hallucination rate.
- :mod:`~halluguard.lab.evaluate`: :func:`~halluguard.lab.evaluate.run_lab`, what ``halluguard demo`` runs.

The trained models ship in ``assets/`` and load like any checkpoint::

    from transformers import AutoProcessor, LlavaForConditionalGeneration
    from halluguard.lab import CAPTIONER, DETECTOR
    model = LlavaForConditionalGeneration.from_pretrained(CAPTIONER)
    processor = AutoProcessor.from_pretrained(CAPTIONER)

>>> CAPTIONER.name, DETECTOR.name, VOCABULARY.name
('captioner', 'detector.pt', 'vocabulary.json')

Importing this package imports neither torch nor transformers.
"""

from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
CAPTIONER = ASSETS / "captioner"
DETECTOR = ASSETS / "detector.pt"
VOCABULARY = ASSETS / "vocabulary.json"

__all__ = ["ASSETS", "CAPTIONER", "DETECTOR", "VOCABULARY", "run_lab"]


def __getattr__(name: str):
    if name == "run_lab":
        from halluguard.lab.evaluate import run_lab

        return run_lab
    raise AttributeError(f"module 'halluguard.lab' has no attribute {name!r}")
