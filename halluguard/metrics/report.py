"""The result of an evaluation, three ways: a terminal table (rich), JSON, and a PNG plot (matplotlib).

JSON layout (``Report.to_json()``; rates in percent, NaN written as ``null``)::

    {"metric": "chair",
     "runs": [{"run": "before.jsonl", "chair_s": 45.0, "chair_s_ci": [40.6, 49.4], "chair_i": ...,
               "recall": ..., "n": 500, "avg_words": 87.1, "bad_lines": 0, "errors": []}, ...],
     "comparisons": [{"a": "before.jsonl", "b": "after.jsonl", "n_paired": 500,
                      "rates": {"chair_s": {"a": 45.0, "b": 30.2, "diff": -14.8, "diff_ci": [...],
                                            "p": 0.001, "test": "paired bootstrap"}, ...}}],
     "settings": {"bootstrap_resamples": 1000, "seed": 0, "level": 0.95, ...}}

POPE runs with several splits add ``"splits": {"random": {...}, ...}`` to each run and comparison.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from halluguard.metrics.runs import MetricRun

LABELS = {
    "chair_s": "CHAIR_s", "chair_i": "CHAIR_i", "recall": "Recall", "accuracy": "Accuracy",
    "precision": "Precision", "f1": "F1", "yes_ratio": "Yes ratio", "chair": "CHAIR", "cover": "Cover",
    "hal": "Hal", "cog": "Cog", "faithfulness": "Faithful", "supported_share": "Supported",
    "object": "Object", "count": "Count", "attribute": "Attribute", "relation": "Relation",
}  # fmt: skip
#: rates where less is better (the others: more is better; the yes-ratio: 50 % is the balance)
LOWER_IS_BETTER = frozenset({"chair_s", "chair_i", "chair", "hal", "cog"})
EXTRA = {"chair": ("avg_words",), "pope": ("unparsed",), "amber": ("n_generative", "n_discriminative")}


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN -> None, floats to 6 significant digits, tuples -> lists."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else float(f"{value:.6g}")
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _fmt(value: Any, ci: Any = None) -> str:
    """``45.0`` or, with an interval, ``45.0`` over ``40.8-49.2`` on a second line."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int):
        return str(value)
    text = f"{value:.1f}"
    if ci and not any(c is None or math.isnan(c) for c in ci):
        text += f"\n{ci[0]:.1f}–{ci[1]:.1f}"
    return text


def _short(name: str) -> str:
    return name.removesuffix(".jsonl").removesuffix(".json")


def _direction(rate: str) -> str:
    """How to read a rate on a plot: which way is better."""
    if rate == "yes_ratio":
        return "(50 = balanced)"
    return "(lower is better)" if rate in LOWER_IS_BETTER else "(higher is better)"


def _fmt_p(p: Any) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    return f"{p:.3f}" if p >= 0.001 else "<0.001"


@dataclass
class Report:
    """What :func:`halluguard.metrics.evaluate` returns."""

    metric: str
    results: list[MetricRun]
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    rates: tuple[str, ...] = ()

    @staticmethod
    def _entry(result: MetricRun) -> dict[str, Any]:
        entry = {"run": result.name, **result.summary}
        if result.groups:
            entry["splits"] = {name: dict(g.summary) for name, g in result.groups.items()}
        entry["bad_lines"] = len({e["line"] for e in result.errors})
        entry["errors"] = list(result.errors)
        return entry

    @property
    def runs(self) -> list[dict[str, Any]]:
        """One summary per run (rates, ``<rate>_ci`` intervals, counts, ``errors`` with line numbers)."""
        return [self._entry(r) for r in self.results]

    def to_json(self) -> dict[str, Any]:
        """``{metric, runs: [...], comparisons, settings}``; with one run, its figures also at the top
        level (``chair_s``, ``chair_i``, ``recall``, ``n`` ...), so ``json["chair_s"]`` just works."""
        single = dict(self.runs[0]) if len(self.runs) == 1 else {}
        return _clean(
            {
                **single,
                "metric": self.metric,
                "runs": self.runs,
                "comparisons": self.comparisons,
                "settings": self.settings,
            }
        )

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path`` atomically (a partial file is never left behind)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.to_json(), f, indent=2, ensure_ascii=False)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    # ------------------------------------------------------------------ table

    def tables(self) -> list[Any]:
        """The rich tables :meth:`print` shows: runs (with intervals), then comparisons."""
        from rich.table import Table
        from rich.text import Text

        level = int(round(100 * self.settings.get("level", 0.95)))
        runs = Table(
            title=f"{self.metric.upper()} (percent; under each value its {level} % bootstrap interval)",
            title_justify="left",
        )
        runs.add_column("run", overflow="fold")
        runs.add_column("n", justify="right")
        for rate in self.rates:
            runs.add_column(LABELS.get(rate, rate), justify="right")
        for extra in EXTRA.get(self.metric, ()):
            runs.add_column(extra.replace("_", " "), justify="right")
        runs.add_column("bad lines", justify="right")
        for result in self.results:
            for name, summary, bad in self._rows(result):
                cells = [Text(name), _fmt(summary.get("n"))]
                cells += [_fmt(summary.get(rate), summary.get(f"{rate}_ci")) for rate in self.rates]
                cells += [_fmt(summary.get(extra)) for extra in EXTRA.get(self.metric, ())]
                cells.append(bad)
                runs.add_row(*cells)
        tables = [runs]
        if self.comparisons:
            comp = Table(
                title="Paired comparison (diff = b - a in percentage points; test: paired bootstrap, "
                "or McNemar for accuracy)",
                title_justify="left",
            )
            for col, justify in (
                ("a -> b", "left"),
                ("rate", "left"),
                ("a", "right"),
                ("b", "right"),
                ("diff", "right"),
                (f"{level} % CI", "right"),
                ("p", "right"),
                ("test", "left"),
            ):
                comp.add_column(col, justify=justify)  # type: ignore[arg-type]
            for c in self.comparisons:
                self._comparison_rows(comp, c, f"{_short(c['a'])} -> {_short(c['b'])}")
                for split, sc in c.get("splits", {}).items():
                    self._comparison_rows(comp, sc, f"  {split}")
            tables.append(comp)
        return tables

    @staticmethod
    def _rows(result: MetricRun) -> list[tuple[str, dict[str, Any], str]]:
        bad = str(len({e["line"] for e in result.errors}))
        rows = [(_short(result.name), result.summary, bad)]
        rows += [(f"  {name}", g.summary, "") for name, g in result.groups.items()]
        return rows

    def _comparison_rows(self, table: Any, comparison: dict[str, Any], label: str) -> None:
        from rich.text import Text

        for i, (rate, e) in enumerate(comparison["rates"].items()):
            ci = e.get("diff_ci") or [float("nan")] * 2
            table.add_row(
                Text(label if i == 0 else ""),
                LABELS.get(rate, rate),
                _fmt(e.get("a")),
                _fmt(e.get("b")),
                "–" if e.get("diff") is None or math.isnan(e["diff"]) else f"{e['diff']:+.1f}",
                "–" if any(x is None or math.isnan(x) for x in ci) else f"{ci[0]:+.1f}…{ci[1]:+.1f}",
                _fmt_p(e.get("p")),
                {"mcnemar": "McNemar", "paired bootstrap": "bootstrap"}.get(
                    e.get("test", ""), e.get("test", "")
                ),
            )

    def markdown(self) -> str:
        """The runs and comparisons as Markdown tables (value, then its interval in brackets)."""
        level = int(round(100 * self.settings.get("level", 0.95)))
        extras = EXTRA.get(self.metric, ())
        head = ["run", "n", *(LABELS.get(r, r) for r in self.rates), *(e.replace("_", " ") for e in extras),
                "bad lines"]
        lines = [f"{self.metric.upper()} (percent; [{level} % bootstrap interval])", "",
                 "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        for result in self.results:
            for name, summary, bad in self._rows(result):
                cells = [name.strip(), _fmt(summary.get("n"))]
                for rate in self.rates:
                    value, ci = summary.get(rate), summary.get(f"{rate}_ci")
                    cells.append(_fmt(value) + (f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else ""))
                cells += [_fmt(summary.get(extra)) for extra in extras] + [bad or "0"]
                lines.append("| " + " | ".join(cells) + " |")
        for comparison in self.comparisons:
            lines += ["", f"{_short(comparison['b'])} vs {_short(comparison['a'])} (b - a, percentage points)", "",
                      f"| rate | a | b | diff | {level} % CI | p | test |", "|" + " --- |" * 7]
            for rate, e in comparison["rates"].items():
                ci = e.get("diff_ci") or [float("nan")] * 2
                lines.append(f"| {LABELS.get(rate, rate)} | {_fmt(e.get('a'))} | {_fmt(e.get('b'))} | "
                             f"{e['diff']:+.1f} | {ci[0]:+.1f} to {ci[1]:+.1f} | {_fmt_p(e.get('p'))} | {e.get('test', '')} |")
        return "\n".join(lines)

    def print(self, console: Any = None) -> None:
        """Print the tables, then each run's bad lines (first 10 per run)."""
        from rich.console import Console

        console = console or Console()
        for table in self.tables():
            console.print(table)
        for result in self.results:
            if result.errors:
                console.print(
                    f"[yellow]{result.name}: {len(result.errors)} problem(s) left out of the scores:[/]"
                )
                for e in result.errors[:10]:
                    console.print(f"  line {e['line']}: {e['reason']}", markup=False, highlight=False)
                if len(result.errors) > 10:
                    console.print(f"  ... and {len(result.errors) - 10} more (see --json)")

    # ------------------------------------------------------------------ plot

    def figure(self) -> Any:
        """A matplotlib ``Figure``: grouped bars, one series (``BarContainer``) per run, with intervals."""
        try:
            from matplotlib.figure import Figure
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("plots need matplotlib: pip install 'halluguard-vlm[plot]'") from exc

        rates = [r for r in self.rates if any(r in res.summary for res in self.results)]
        n = max(len(self.results), 1)
        width = 0.8 / n
        fig = Figure(figsize=(max(5.0, 1.3 * len(rates) + 2.0), 4.0), dpi=100, layout="constrained")
        ax = fig.add_subplot()
        for i, result in enumerate(self.results):
            values, low, high = [], [], []
            for rate in rates:
                v = result.summary.get(rate, float("nan"))
                v = float("nan") if v is None else float(v)
                ci = result.summary.get(f"{rate}_ci") or [v, v]
                values.append(0.0 if math.isnan(v) else v)
                low.append(
                    0.0 if math.isnan(v) or ci[0] is None or math.isnan(ci[0]) else max(0.0, v - ci[0])
                )
                high.append(
                    0.0 if math.isnan(v) or ci[1] is None or math.isnan(ci[1]) else max(0.0, ci[1] - v)
                )
            xs = [j + (i - (n - 1) / 2) * width for j in range(len(rates))]
            ax.bar(xs, values, width, yerr=[low, high], capsize=3, label=result.name)
        ax.set_xticks(range(len(rates)), [f"{LABELS.get(r, r)}\n{_direction(r)}" for r in rates])
        ax.set_ylabel("percent")
        level = int(round(100 * self.settings.get("level", 0.95)))
        title = f"{self.metric.upper()} ({level} % bootstrap intervals)"
        if self.comparisons:
            first = self.comparisons[0]
            title += f"; p: {_short(first['b'])} vs {_short(first['a'])}, paired test"
            for j, rate in enumerate(rates):
                entry = first["rates"].get(rate)
                if entry and entry.get("p") is not None:
                    ax.text(j, 101, f"p={_fmt_p(entry['p'])}", ha="center", va="bottom", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, 110)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return fig

    def plot(self, path: str | Path) -> Any:
        """Write :meth:`figure` as a PNG to ``path``; returns the figure."""
        fig = self.figure()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
        return fig
