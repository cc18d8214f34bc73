"""The harness plumbing: methods as callables, the table, the JSON and the plot (no model runs here)."""

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from halluguard.lab import evaluate  # noqa: E402


def test_run_lab_scores_any_generate_callable(tmp_path):
    data = evaluate.load_data(40)
    perfect = [t["caption"] for t in data.truths]

    def prior_only(images):  # names a star after every moon, whatever the image shows
        return [c.replace("moon.", "moon and a star.") for c in perfect]

    results = evaluate.run_lab(40, methods={"perfect": lambda images: perfect, "prior": prior_only},
                               fix=False, sweep=False, n_resamples=100)
    best, biased = results.row("perfect"), results.row("prior")
    assert best["recall"] == 100 and best["chair_i"] == 0 and best["prior"] == 0
    assert biased["prior"] > 0 and biased["control"] == 0
    table = results.table()
    assert "perfect" in table and "CHAIR_i" in table and "n = 40 lab test images (20 prior-breaking)" in table
    paths = results.write(tmp_path, plot=False)
    saved = json.loads(paths["json"].read_text())
    assert [r["method"] for r in saved["rows"]] == ["perfect", "prior"]
    with pytest.raises(KeyError, match="no row"):
        results.row("perfect", "fixed")


def test_plot_has_one_line_per_sweep(tmp_path):
    pytest.importorskip("matplotlib")
    points = [{"line": line, "param": "alpha", "value": v, "chair_i": 10 - v, "recall": 80 + v, "prior": 12 - v}
              for line in ("vcd T=500", "vdd") for v in (0.0, 1.0, 2.0)]
    points.append({"line": "greedy + fix", "param": "-", "value": 1.0, "chair_i": 2, "recall": 75, "prior": 1})
    path = evaluate.plot_tradeoff(evaluate.LabResults(sweep=points, meta={"sweep_images": 10}), tmp_path / "p.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_plot_keeps_the_axes_near_greedy_when_a_setting_breaks_the_captions():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    greedy = {"line": "m3id", "param": "lam", "value": 0.0, "chair_i": 14.0, "recall": 85.0, "prior": 17.0}
    broken = {**greedy, "value": 0.3, "chair_i": 40.0, "recall": 82.0}
    fig, ax = plt.subplots()
    evaluate._zoom(ax, [greedy, {**greedy, "value": 0.1, "chair_i": 13.0}, broken], "chair_i", greedy)
    assert ax.get_ylim()[1] < 40 and any("lam=0.3: 40.0" in t.get_text() for t in ax.texts)
    plt.close(fig)


def test_unknown_method_names_are_listed():
    with pytest.raises(ValueError, match="valid: greedy, vcd T=100"):
        evaluate.build_methods(None, ["nope"])


def test_slow_sweep_lines_stop_at_the_tables_setting_unless_asked():
    """The demo's sweep draws OPERA only to its default (captions the table has): no more decoding."""
    data = evaluate.load_data(20)
    perfect = [t["caption"] for t in data.truths]
    assert "opera" in evaluate.SLOW_SWEEPS

    class Recording:
        calls = []

        def caption(self, images, method="none", **params):
            self.calls.append((method, params))
            return perfect[: len(images)]

    generated = {"greedy": perfect, "opera": perfect}
    model = Recording()
    quick = evaluate._sweep(model, data, generated, 20, None, slow=False)
    assert [p["value"] for p in quick if p["line"] == "opera"] == [0.0, 1.0] and model.calls == []
    full = evaluate._sweep(model, data, generated, 20, None, slow=True)
    assert [p["value"] for p in full if p["line"] == "opera"] == [0.0, 0.5, 1.0, 2.0]
    assert model.calls == [("opera", {"penalty_weights": 0.5}), ("opera", {"penalty_weights": 2.0})]
