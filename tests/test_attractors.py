"""The built point / line / bistable population (dynamo_ext.population.attractors): each kind has the
fixed points its equation says, the kinds' mean responses match where they were matched, the input copy
is what sets the hidden states' geometry, and bad settings are refused by name."""
import pytest
import torch

import dynamo_ext as de
from dynamo_ext.population.attractors import (KINDS, LatentAttractorRNN, attractor_population, evidence_task,
                                              matched_gain)


def test_each_kind_has_the_fixed_points_of_its_equation():
    zero = torch.zeros(1, 1)
    point = LatentAttractorRNN("point", beta=2.0, seed=1)
    fps = de.find_fixed_points(point, inputs=zero, initial_states=torch.randn(64, 8, dtype=torch.float64))
    assert len(fps) == 1 and bool(fps.is_stable.all()) and float(fps.states.abs().max()) < 1e-8
    assert float(fps.eigenvalues.abs().max()) == pytest.approx(0.97, abs=1e-6)

    bistable = LatentAttractorRNN("bistable", beta=2.0, k=0.03, seed=2)
    U = bistable.embedding.double()
    starts = torch.linspace(-1.5, 1.5, 61, dtype=torch.float64)[:, None] * U[:, 0]
    fps = de.find_fixed_points(bistable, inputs=zero, initial_states=starts)
    x = (fps.states @ U)[:, 0].sort().values
    torch.testing.assert_close(x, torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64), atol=1e-6, rtol=0)
    assert fps.n_unstable.tolist().count(1) == 1 and int(fps.is_stable.sum()) == 2  # 0 unstable: slope 1 + k

    line = LatentAttractorRNN("line", beta=2.0, seed=3)
    U = line.embedding.double()
    on_line = torch.tensor([-0.3, 0.1, 0.4], dtype=torch.float64)[:, None] * U[:, 0]
    step = line.step(torch.zeros(3, 1, dtype=torch.float64), on_line)
    torch.testing.assert_close(step, on_line)  # every point of the line is fixed


def test_matched_mean_response_and_the_input_copy_sets_the_geometry():
    T = 25
    task = evidence_task(n_train=20, n_test=10, seq_len=T, noise=0.0, coherences=(0.004,))
    ends = {}
    for kind in KINDS:
        net = LatentAttractorRNN(kind, beta=3.0, seq_len=T)
        h, y = net.record(task.x_train)
        ends[kind] = float(y[:, -1].mean())
        lat = h @ net.embedding
        torch.testing.assert_close(lat[..., 1], 3.0 * task.x_train[..., 0])  # v_t = beta u_t
    assert ends["line"] == pytest.approx(0.004 * T * matched_gain("line", T, 0.97, 0.03))
    for kind in ("point", "bistable"):
        assert ends[kind] == pytest.approx(ends["line"], rel=0.01), ends  # matched to first order in x


def test_population_ids_labels_and_bad_settings():
    pop = attractor_population(betas=(1.0, 4.0), seed=0)
    assert pop.ids == ["point-b1", "point-b4", "line-b1", "line-b4", "bistable-b1", "bistable-b4"]
    assert pop.labels("arch") == ["point", "point", "line", "line", "bistable", "bistable"]
    assert all(m.test_accuracy > 0.9 for m in pop.members)  # all three compute the sign of the evidence
    with pytest.raises(ValueError, match="argument 'kind' must be one of"):
        LatentAttractorRNN("ring", 1.0)
    with pytest.raises(ValueError, match="argument 'leak' must be in \\(0, 1\\), got 1.2"):
        LatentAttractorRNN("point", 1.0, leak=1.2)
    with pytest.raises(ValueError, match="argument 'betas' must hold at least one"):
        attractor_population(betas=())
