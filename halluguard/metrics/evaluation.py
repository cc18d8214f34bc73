"""``evaluate``: score runs with one metric, add intervals, compare runs; returns a :class:`Report`.

>>> gt = {"1": ["dog"], "2": ["cat", "couch"]}
>>> before = [{"image_id": 1, "caption": "A dog and a frisbee."}, {"image_id": 2, "caption": "A cat."}]
>>> after = [{"image_id": 1, "caption": "A dog."}, {"image_id": 2, "caption": "A cat on a sofa."}]
>>> report = evaluate([before, after], gt, metric="chair", names=["before", "after"], n_resamples=200)
>>> [(r["run"], r["chair_s"], r["recall"]) for r in report.runs]
[('before', 50.0, 66.66666666666667), ('after', 0.0, 100.0)]
>>> report.comparisons[0]["rates"]["chair_s"]["diff"]
-50.0
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from halluguard.metrics import statistics
from halluguard.metrics.report import Report
from halluguard.metrics.runs import MetricRun, Run, UsageError, read_run

__all__ = ["METRICS", "RATES", "RULES", "evaluate"]

METRICS = ("chair", "pope", "amber", "faithfulness")
#: ``official``: what the metric's official script computes (the default); ``corrected``: halluguard's
#: named corrections (CHAIR: tokens, singulars and synonyms, see ``coco_vocabulary``; AMBER: free-text
#: yes/no answers parsed leniently instead of exact "Yes"/"No").
RULES = ("official", "corrected")
# The rates each metric reports (percent), in table/plot order.
RATES = {
    "chair": ("chair_s", "chair_i", "recall"),
    "pope": ("accuracy", "precision", "recall", "f1", "yes_ratio"),
    "amber": ("chair", "cover", "hal", "cog", "accuracy", "precision", "recall", "f1"),
    "faithfulness": ("faithfulness", "supported_share", "object", "count", "attribute", "relation"),
}
# Rates compared with McNemar's test (per-item correctness) instead of the paired bootstrap.
MCNEMAR = {"pope": ("accuracy",), "amber": ("accuracy",)}


def per_run_fields(runs: Any, text_field: str | Sequence[str] | None) -> tuple[list[Any], list[str | None]]:
    """Pair each run with its text field: one field for all runs, or one per run; one file with
    several fields is scored once per field (``fixed.jsonl`` with ``answer`` then ``corrected``).

    >>> per_run_fields(["fixed.jsonl"], ["answer", "corrected"])
    (['fixed.jsonl', 'fixed.jsonl'], ['answer', 'corrected'])
    """
    if isinstance(runs, (str, Path)):
        runs = [runs]
    elif isinstance(runs, Sequence) and runs and isinstance(runs[0], dict):
        runs = [runs]
    runs = list(runs)
    fields: list[str | None] = [text_field] if text_field is None or isinstance(text_field, str) else list(text_field)
    if len(runs) == 1 and len(fields) > 1:
        runs = runs * len(fields)
    if len(fields) == 1:
        fields = fields * len(runs)
    if len(fields) != len(runs):
        raise UsageError(f"{len(fields)} text fields for {len(runs)} runs: give one for all, or one per run")
    return runs, fields


def _as_runs(runs: Any, names: Sequence[str] | None, text_field: Any, require_text: bool) -> list[Run]:
    runs, fields = per_run_fields(runs, text_field)
    if not runs:
        raise UsageError("no run to evaluate: give at least one JSONL file")
    if names is not None and len(names) != len(runs):
        raise UsageError(f"{len(names)} names for {len(runs)} runs")
    out = []
    for i, run in enumerate(runs):
        text_field = fields[i]
        name = names[i] if names else _default_name(run, text_field, fields)
        if isinstance(run, Run):
            out.append(run)
        elif isinstance(run, (str, Path)):
            out.append(read_run(run, text_field=text_field, name=name, require_text=require_text))
        else:
            out.append(
                Run.from_records(
                    run, name=name or f"run {i + 1}", text_field=text_field, require_text=require_text
                )
            )
    seen: dict[str, int] = {}
    for run in out:  # two files with the same name in different folders: keep them apart
        seen[run.name] = seen.get(run.name, 0) + 1
        if seen[run.name] > 1:
            run.name = f"{run.name} ({seen[run.name]})"
    return out


def _annotation_list(annotations: Any) -> list[Any]:
    if annotations is None:
        return []
    if isinstance(annotations, (str, Path)):
        return [annotations]
    if (
        isinstance(annotations, (list, tuple))
        and annotations
        and all(isinstance(a, (str, Path)) for a in annotations)
    ):
        return list(annotations)
    return [annotations]


def _default_name(run: Any, text_field: str | None, fields: list[str | None]) -> str | None:
    """``fixed.jsonl [corrected]`` when runs are read with different fields, else the file name."""
    if not isinstance(run, (str, Path)) or len(set(fields)) < 2:
        return None
    return f"{Path(run).name} [{text_field or 'answer'}]"


def reference_for(metric: str, annotations: Any, rules: str = "official") -> Any:
    """What a metric scores against, loaded once: CHAIR's ground truth, POPE's questions, AMBER's data."""
    sources = _annotation_list(annotations)
    if metric == "chair":
        from halluguard.metrics import chair

        return chair.load_ground_truth(*sources, standard=rules == "official")
    if metric == "pope":
        from halluguard.metrics import pope

        if sources and not all(isinstance(s, (str, Path)) for s in sources):
            return [dict(q, split=q.get("split") or q.get("category") or "all") for q in sources[0]]
        return pope.load_questions(*sources)
    if metric == "amber":
        from halluguard.metrics import amber

        if len(sources) != 1:
            raise UsageError("AMBER needs its annotations.json: pass --annotations PATH/annotations.json")
        return amber.load_amber(sources[0])
    return None


def _score_runs(
    metric: str, runs: list[Run], reference: Any, strict: bool, rules: str, similar: Any = None,
    vocabulary: Any = None,
) -> list[MetricRun]:
    if metric == "chair":
        from halluguard.metrics import chair

        standard = rules == "official"
        return [chair.evaluate_run(r, reference, standard=standard, vocabulary=vocabulary) for r in runs]
    if metric == "pope":
        from halluguard.metrics import pope

        return [pope.evaluate_run(r, reference, strict=strict) for r in runs]
    if metric == "amber":
        from halluguard.metrics import amber

        return [amber.evaluate_run(r, reference, similar, lenient=rules == "corrected") for r in runs]
    from halluguard.metrics import faithfulness

    return [faithfulness.evaluate_run(r) for r in runs]


def _intervals(result: MetricRun, rates: Sequence[str], n_resamples: int, seed: int, level: float) -> None:
    """Add ``<rate>_ci`` (percent) to the summary; rates over the same items share resamples."""
    by_items: dict[tuple[str, ...], dict[str, tuple[list[float], list[float]]]] = {}
    for rate in rates:
        if rate in result.parts:
            by_items.setdefault(tuple(result.keys_of(rate)), {})[rate] = result.parts[rate]
    for parts in by_items.values():
        cis = statistics.bootstrap_ratios(parts, n_resamples=n_resamples, seed=seed, level=level)
        for rate, (lo, hi) in cis.items():
            result.summary[f"{rate}_ci"] = [100.0 * lo, 100.0 * hi]
    for group in result.groups.values():
        _intervals(group, rates, n_resamples, seed, level)


def _aligned(
    a: MetricRun, b: MetricRun, rate: str
) -> tuple[tuple[list[float], list[float]], tuple[list[float], list[float]]]:
    index_b = {k: i for i, k in enumerate(b.keys_of(rate))}
    na, da = a.parts[rate]
    nb, db = b.parts[rate]
    pairs = [(i, index_b[k]) for i, k in enumerate(a.keys_of(rate)) if k in index_b]
    return ([na[i] for i, _ in pairs], [da[i] for i, _ in pairs]), (
        [nb[j] for _, j in pairs],
        [db[j] for _, j in pairs],
    )


def compare(
    a: MetricRun,
    b: MetricRun,
    metric: str,
    *,
    n_resamples: int = statistics.N_RESAMPLES,
    seed: int = statistics.SEED,
    level: float = statistics.LEVEL,
) -> dict[str, Any]:
    """Paired comparison of run ``b`` with run ``a`` on the items both scored (differences b - a)."""
    out: dict[str, Any] = {"a": a.name, "b": b.name, "n_paired": 0, "rates": {}}
    for rate in RATES[metric]:
        if rate not in a.parts or rate not in b.parts:
            continue
        pa, pb = _aligned(a, b, rate)
        entry: dict[str, Any] = {
            "a": 100.0 * statistics.ratio(*pa),
            "b": 100.0 * statistics.ratio(*pb),
            "n": len(pa[0]),
        }
        boot = statistics.paired_bootstrap(pa, pb, n_resamples=n_resamples, seed=seed, level=level)
        entry["diff"] = 100.0 * boot["diff"]
        entry["diff_ci"] = [100.0 * x for x in boot["diff_ci"]]
        if rate in MCNEMAR.get(metric, ()):
            test = statistics.mcnemar(pa[0], pb[0])
            entry.update(p=test["p"], test="mcnemar", only_a_right=test["b"], only_b_right=test["c"])
        else:
            entry.update(p=boot["p"], test="paired bootstrap")
        out["rates"][rate] = entry
        out["n_paired"] = max(out["n_paired"], entry["n"])
    if a.groups and b.groups:
        out["splits"] = {
            name: compare(group, b.groups[name], metric, n_resamples=n_resamples, seed=seed, level=level)
            for name, group in a.groups.items()
            if name in b.groups
        }
    return out


def _chair_vocabulary(vocabulary: Any) -> tuple[Any, set[str]]:
    """The custom vocabulary (None: COCO's, by the CHAIR rules) and the labels it can name."""
    from halluguard.metrics.coco_vocabulary import COCO_CLASSES

    if vocabulary is None:
        return None, set(COCO_CLASSES)
    from halluguard.correctors.vocabulary import Vocabulary

    try:
        vocab = Vocabulary.from_file(vocabulary, base=Vocabulary.coco(wordnet=False))
    except ValueError as error:
        raise UsageError(str(error)) from None
    return vocab, set(vocab.labels)


def evaluate(
    runs: Any,
    annotations: Any = None,
    metric: str = "chair",
    *,
    text_field: str | None = None,
    names: Sequence[str] | None = None,
    strict: bool = False,
    rules: str = "official",
    vocabulary: str | Path | None = None,
    vectors: str = "en_core_web_lg",
    n_resamples: int = statistics.N_RESAMPLES,
    seed: int = statistics.SEED,
    level: float = statistics.LEVEL,
    engine: str = "local",
    ray_address: str | None = None,
) -> Report:
    """Score runs with a metric; add 95 % bootstrap intervals; compare every run with the first.

    - ``runs``: a JSONL path, a list of paths, or lists of records (dicts).
    - ``annotations``: path(s) or parsed data. CHAIR: COCO instances and/or captions JSON, or
      ``{image_id: [objects]}``; POPE: question files or a folder of them; AMBER: ``annotations.json``;
      faithfulness: none (reads the ``claims`` of ``halluguard fix`` output).
    - ``metric``: one of ``chair``, ``pope``, ``amber``, ``faithfulness``.
    - ``text_field``: the answer field (default: ``answer``, else ``caption``, ``text``, ``response``);
      a list gives one per run, and one file with several fields is scored once per field.
    - ``strict``: POPE's strict answer parsing instead of its ``evaluate.py``'s.
    - ``rules``: ``official`` (default: what the official script computes) or ``corrected`` (CHAIR:
      halluguard's tokens, singulars and synonyms; AMBER: free-text yes/no answers parsed leniently).
    - ``vocabulary``: CHAIR on other labels than COCO's: a JSON file ``{label: [words]}`` extending the
      COCO vocabulary, as ``halluguard fix --vocabulary`` takes it (the lab's kinds, a user's label set).
    - ``vectors``: AMBER's word vectors for its similarity test (a spaCy model name or path; skipped,
      and said in ``settings``, when it is not installed).
    - ``n_resamples``, ``seed``, ``level``: the bootstrap (1000 resamples, seed 0, 95 % by default).
    - ``engine="ray"``: score the records on a Ray cluster (``ray_address``, else a local one); for
      the metrics that decompose per record (CHAIR, POPE with question ids, faithfulness); same results.

    Raises :class:`~halluguard.metrics.runs.UsageError` for what the caller must fix (missing files,
    unknown metric); bad lines inside a run are reported in ``Report.runs[i]["errors"]`` instead.
    """
    metric = str(metric).lower()
    if metric not in METRICS:
        raise UsageError(f"unknown metric {metric!r}; valid metrics: {', '.join(METRICS)}")
    if rules not in RULES:
        raise UsageError(f"unknown rules {rules!r}; valid rules: {', '.join(RULES)}")
    if metric not in ("faithfulness", "pope") and annotations is None:
        raise UsageError(f"--metric {metric} needs --annotations (ground truth to score against)")
    similar, vocab, labels = None, None, set()
    if metric == "chair":
        vocab, labels = _chair_vocabulary(vocabulary)
    elif vocabulary is not None:
        raise UsageError("--vocabulary applies to CHAIR only")
    if engine == "ray":
        if vocab is not None:
            raise UsageError("--vocabulary is not available with --engine ray yet; score locally")
        from halluguard.integrations.ray import score_runs

        paths, fields = per_run_fields(runs, text_field)
        if metric == "amber" or not all(isinstance(p, (str, Path)) for p in paths):
            raise UsageError("--engine ray scores JSONL files with chair, pope or faithfulness")
        names = names or [_default_name(p, f, fields) or Path(p).name for p, f in zip(paths, fields)]
        reference = reference_for(metric, annotations, rules)
        results = score_runs(metric, paths, reference, names=names, text_fields=fields, strict=strict,
                             standard=rules == "official", address=ray_address)
    elif engine == "local":
        loaded = _as_runs(runs, names, text_field, require_text=metric != "faithfulness")
        if metric == "pope" and annotations is None:
            from halluguard.metrics.pope import questions_from_run

            annotations = questions_from_run(loaded[0]) if loaded else None
            if not annotations:
                raise UsageError(
                    "--metric pope needs --annotations (POPE question files), unless the run carries its "
                    "labels (lmms-eval --log_samples, VLMEvalKit predictions)"
                )
        if metric == "amber":
            from halluguard.metrics.amber import word_vectors

            similar = word_vectors(vectors)
        reference = reference_for(metric, annotations, rules)
        results = _score_runs(metric, loaded, reference, strict, rules, similar, vocab)
    else:
        raise UsageError(f"unknown engine {engine!r}; valid engines: local, ray")
    for result in results:
        _intervals(result, RATES[metric], n_resamples, seed, level)
    comparisons = [
        compare(results[0], other, metric, n_resamples=n_resamples, seed=seed, level=level)
        for other in results[1:]
    ]
    settings = {
        "bootstrap_resamples": n_resamples,
        "seed": seed,
        "level": level,
        "text_field": text_field,
        "annotations": [str(a) for a in _annotation_list(annotations) if isinstance(a, (str, Path))],
    }
    if metric in ("chair", "amber"):
        settings["rules"] = rules
    if vocabulary is not None:
        settings["vocabulary"] = str(vocabulary)
    if metric == "chair":
        from halluguard.metrics.chair import overlap_warning

        warning = overlap_warning(reference, labels)
        if warning:
            settings["warnings"] = [warning]
    if metric == "amber":
        settings["similarity"] = (
            f"{vectors} word vectors, cosine > 0.8" if similar is not None
            else f"off: {vectors} is not installed (the official script needs it; pass --vectors)"
        )
    if metric == "pope":
        settings["parsing"] = "strict" if strict else "pope"
    return Report(
        metric=metric, results=results, comparisons=comparisons, settings=settings, rates=RATES[metric]
    )
