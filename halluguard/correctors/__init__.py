"""Post-hoc correction, stage by stage: claims, vocabulary, verify, rewrite, LURE, yes/no.

:class:`~halluguard.correctors.woodpecker.Woodpecker` wires them together; ``halluguard fix`` runs it.
Submodules import spaCy, NLTK or torch only when used.
"""
