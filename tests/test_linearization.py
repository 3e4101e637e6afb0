"""The linearization at matched stable points, like with like: the meta-model's Jacobian through the map A_n
against the base's, and the modes A_n barely sees, on constructed Jacobians whose answers are known."""
import json
import math

import pytest
import torch

from dynamo_ext.dynamics.linearization import compare_linearization, effective_map, leading, summary, visibility


def _random_stable(d, gen, radius=0.85):
    q = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))[0]
    return q @ torch.diag(torch.linspace(radius, 0.1, d, dtype=torch.float64)) @ q.T


def test_a_conjugate_meta_jacobian_reads_like_the_base_in_both_readings():
    gen = torch.Generator().manual_seed(0)
    j_base = _random_stable(5, gen)
    a = torch.linalg.qr(torch.randn(5, 5, generator=gen, dtype=torch.float64))[0] * 3.0  # orthogonal, scaled
    j_meta = torch.linalg.solve(a, j_base @ a)  # A J_m A^-1 = J_b
    out = compare_linearization(j_base, j_meta, a)
    for name in ("through_map", "full"):
        assert [p["modulus"] for p in out[name]] == pytest.approx([p["modulus"] for p in out["base"]], abs=1e-10)
        assert not out[f"differs_{name}"]
    assert out["unseen"] == {"count": 0, "max_modulus": None, "slower_than_seen": False}
    assert out["base"][0]["time_constant"] == pytest.approx(-1 / math.log(0.85))


def test_a_slow_mode_the_map_cannot_see_shows_in_full_and_not_through_the_map():
    """D = 7 meta state: the first 4 coordinates carry the base's dynamics (read by A), the last 3 a slow
    rotation at modulus 0.99 that A does not read."""
    gen = torch.Generator().manual_seed(1)
    j_base = _random_stable(4, gen, radius=0.88)
    slow = 0.99 * torch.tensor([[math.cos(0.1), -math.sin(0.1), 0], [math.sin(0.1), math.cos(0.1), 0], [0, 0, 1.0]],
                               dtype=torch.float64)
    j_meta = torch.block_diag(j_base, slow)
    a = torch.cat([torch.eye(4, dtype=torch.float64) * 2.0, torch.zeros(4, 3, dtype=torch.float64)], 1)
    out = compare_linearization(j_base, j_meta, a)
    assert out["through_map"][0]["modulus"] == pytest.approx(0.88, abs=1e-10) and not out["differs_through_map"]
    assert out["full"][0]["modulus"] == pytest.approx(0.99) and out["differs_full"]
    assert out["delta_full"] == pytest.approx(0.11) and abs(out["full"][0]["angle"]) == pytest.approx(0.1)
    assert out["unseen"]["count"] == 3 and out["unseen"]["max_modulus"] == pytest.approx(0.99)
    ev, seen = visibility(j_meta, a)
    assert sorted(seen.tolist())[:3] == pytest.approx([0, 0, 0], abs=1e-12) and min(seen.tolist()[:4]) > 0.4
    s = summary([out, out])
    assert s["n_differ_full"] == 2 and s["n_differ_through_map"] == 0 and s["max_unseen_count"] == 3
    json.dumps(s), json.dumps(out)  # the report's metrics.json holds them
    assert leading(torch.tensor([1.2 + 0j]), 1)[0]["time_constant"] is None


def test_fidelity_rows_carry_the_linearization_of_every_matched_pair(tiny_population, tiny_fit):
    from dynamo_ext.dynamics.attractor_fidelity import fidelity_table, topology

    top = topology(tiny_fit.meta, tiny_population, 1, n_inits=64)
    assert len(top["linearization"]) == top["n_matched"] and top["linearization_summary"]["n_points"] == top["n_matched"]
    for pair, (b, m) in zip(top["linearization"], top["leading_moduli"]):
        assert pair["base"][0]["modulus"] == pytest.approx(b) and pair["full"][0]["modulus"] == pytest.approx(m)
    a = effective_map(tiny_fit.meta.maps[1])
    assert a.shape == (tiny_population.members[1].state_size, tiny_fit.meta.state_size)
    row = fidelity_table([{"id": "m", "arch": "gru", **top}])[0]
    if top["n_matched"]:
        assert "leading modulus through A_n" in row and "unseen modes (max count, max modulus)" in row
