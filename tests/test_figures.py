"""Every plot_* draws into the caller's Axes (or a new Figure), returns the Figure, saves a PNG only when given
a path, and never goes through pyplot."""
import matplotlib
import pytest
import torch
from matplotlib.figure import Figure

from dynamo_ext import dynamics
from dynamo_ext.report import figures

METRICS = {
    "population": [{"id": "a", "arch": "gru", "test_accuracy": 0.9}, {"id": "b", "arch": "lstm", "test_accuracy": 0.8}],
    "embedding": {"a": [0.1, 0.2], "b": [-0.3, 0.4]},
    "baselines": {"distances": {"cka": [[0, 0.2], [0.2, 0]], "weights": [[0, float("nan")], [float("nan"), 0]]},
                  "few_labels": [{"task": "t", "labels_per_class": k, "adapt_accuracy": 0.5 + 0.1 * i,
                                  "scratch_accuracy": 0.3 + 0.1 * i} for i, k in enumerate((1, 4, 16))]},
}


def _fixed_points():
    import dynamo_ext as de

    rnn = torch.nn.RNN(2, 6)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(1.5 * torch.eye(6) + 0.1 * torch.randn(6, 6, generator=torch.Generator().manual_seed(0)))
    return de.find_fixed_points(rnn, n_inits=64)


DRAW = {
    "plot_embedding": lambda **kw: figures.plot_embedding(METRICS, **kw),
    "plot_loss": lambda **kw: figures.plot_loss({"loss": [1.0, 0.5, 0.25], "loss_h": [0.5, 0.3, 0.1]}, **kw),
    "plot_fixed_points": lambda **kw: figures.plot_fixed_points(_fixed_points(), **kw),
}


@pytest.mark.parametrize("name", sorted(DRAW))
def test_a_plot_draws_into_the_given_axes_and_returns_its_figure(name, tmp_path):
    fig = Figure()
    ax = fig.subplots()
    assert DRAW[name](ax=ax) is fig and ax.has_data()
    new = DRAW[name](path=tmp_path / "f.png")
    assert isinstance(new, Figure) and new is not fig and (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_panels_take_one_axes_each_and_a_wrong_count_is_named():
    fig = Figure()
    axes = fig.subplots(1, 2)
    assert figures.plot_distance_matrices(METRICS, ax=axes) is fig and all(a.images for a in axes)
    with pytest.raises(ValueError, match="argument 'ax' must be a sequence of 2 Axes"):
        figures.plot_distance_matrices(METRICS, ax=axes[0])
    assert figures.plot_few_labels(METRICS, ax=[axes[0]]) is fig


def test_no_plot_changes_pyplots_state():
    import matplotlib.pyplot as plt

    before, backend = plt.get_fignums(), matplotlib.get_backend()
    for draw in DRAW.values():
        draw()
    assert plt.get_fignums() == before and matplotlib.get_backend() == backend


def test_figures_of_a_large_population_sample_the_heatmaps_and_say_so():
    import numpy as np

    from dynamo_ext.report.figures import plot_distance_matrices, plot_embedding
    from dynamo_ext.report.html import distance_figure
    from dynamo_ext.report.tables import HEATMAP_MODELS

    n = 1000
    rng = np.random.default_rng(0)
    pop = [{"id": f"m{i}", "arch": ("rnn", "gru")[i % 2], "hidden_size": 8, "seed": i, "test_accuracy": 0.5}
           for i in range(n)]
    d = rng.random((n, n))
    metrics = {"population": pop, "embedding": {p["id"]: rng.standard_normal(2).tolist() for p in pop},
               "baselines": {"distances": {"dynamo": (d + d.T).tolist()}}}
    fig = plot_distance_matrices(metrics)
    assert fig.axes[0].images[0].get_array().shape == (HEATMAP_MODELS, HEATMAP_MODELS)
    assert f"{HEATMAP_MODELS} of {n} models" in fig._suptitle.get_text()
    html_fig = distance_figure(metrics)
    assert len(html_fig.data[0].z) == HEATMAP_MODELS and f"of {n} models" in html_fig.layout.title.text
    emb = plot_embedding(metrics)
    assert len(emb.axes[0].collections) == 2 and not emb.axes[0].texts  # one group per arch, no labels
    assert "(1000 models)" in emb.axes[0].get_title()
