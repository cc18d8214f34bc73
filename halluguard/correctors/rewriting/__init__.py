"""The rule rewriter's pieces (:func:`halluguard.correctors.rewrite.rewrite` puts them together).

- :mod:`.plan`: the edit plan's ops (:class:`~.plan.Removal`, :class:`~.plan.Replacement`,
  :class:`~.plan.Insertion`) and the planning state (:class:`~.plan.Plan`);
- the policies that make it: :mod:`.removal` (an item, a clause, a sentence; with :mod:`.items`
  and :mod:`.promotion`), :mod:`.fixes` (a count, a colour, a relation), :mod:`.hedging`,
  :mod:`.grounding`, and :mod:`.agreement` after them;
- the syntax they read: :mod:`.coordination`, :mod:`.phrases`;
- :mod:`.text_ops`: the text operations that turn a plan into edits.
"""
