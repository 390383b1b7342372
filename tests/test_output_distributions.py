"""The distributional heads' math (``stefaland_hf.output_distributions``) against hand-computed values."""

import math

import numpy as np
import pytest
import torch

from stefaland_hf.evaluation import SCORING_LEVELS
from stefaland_hf.metrics import crps_ensemble, crps_laplace
from stefaland_hf.output_distributions import AsymmetricLaplaceMixture, interpolate_quantiles, pinball_loss


def _ald(loc, scale, asymmetry, weight=None):
    """A mixture [1, C] from component lists (one component by default, weight 1)."""
    rows = [torch.tensor([list(v)], dtype=torch.float64) for v in (loc, scale, asymmetry, weight or [1.0] * len(loc))]
    return AsymmetricLaplaceMixture(*rows)


def test_one_asymmetric_laplace_by_hand():
    """loc 0, b 1, tau 0.25: density tau (1 - tau) exp(-rho_tau(y)); CDF tau e^((1-tau) y) below 0, 1 - (1-tau) e^(-tau y) above."""
    d = _ald([0.0], [1.0], [0.25])
    assert d.cdf(torch.tensor([[-1.0, 2.0]], dtype=torch.float64)).tolist()[0] == pytest.approx(
        [0.25 * math.exp(-0.75), 1 - 0.75 * math.exp(-0.5)], rel=1e-12)
    assert d.quantile([0.1, 0.9]).tolist()[0] == pytest.approx([math.log(0.4) / 0.75, -4 * math.log(0.1 / 0.75)], rel=1e-12)
    assert d.mean().item() == pytest.approx(0.5 / 0.1875)  # b (1 - 2 tau) / (tau (1 - tau))
    assert d.log_prob(torch.tensor([2.0], dtype=torch.float64)).item() == pytest.approx(math.log(0.1875) - 0.25 * 2)
    assert d.log_prob(torch.tensor([-1.0], dtype=torch.float64)).item() == pytest.approx(math.log(0.1875) - 0.75 * 1)


def test_mixture_density_mean_and_quantiles_are_those_of_the_mixture():
    d = _ald([0.0, 3.0], [1.0, 0.5], [0.5, 0.25], [0.3, 0.7])
    y = torch.tensor([1.0], dtype=torch.float64)
    by_hand = 0.3 * 0.25 * math.exp(-0.5 * 1) + 0.7 * 0.1875 / 0.5 * math.exp(-0.75 * 2 / 0.5)
    assert d.log_prob(y).item() == pytest.approx(math.log(by_hand), rel=1e-12)
    assert d.mean().item() == pytest.approx(0.3 * 0.0 + 0.7 * (3.0 + 0.5 * 0.5 / 0.1875))
    levels = torch.tensor([0.01, 0.3, 0.5, 0.99])
    assert d.cdf(d.quantile(levels)).tolist()[0] == pytest.approx(levels.tolist(), abs=1e-9)


def test_clipped_mean_of_a_laplace_by_hand():
    """tau 0.5, b 1 is a Laplace of scale 2: E[max(X, 0)] = 1, E[max(X, 1)] = 1 + e^-0.5, E[max(X, -1)] = e^-0.5,
    E[clip(X, -1, 1)] = 0 by symmetry; no bound gives the mean."""
    d = _ald([0.0], [1.0], [0.5])
    inf = torch.tensor(math.inf, dtype=torch.float64)
    clipped = lambda low, high: d.clipped_mean(torch.as_tensor(low, dtype=torch.float64), torch.as_tensor(high, dtype=torch.float64)).item()  # noqa: E731
    assert clipped(0.0, inf) == pytest.approx(1.0)
    assert clipped(1.0, inf) == pytest.approx(1 + math.exp(-0.5))
    assert clipped(-1.0, inf) == pytest.approx(math.exp(-0.5))
    assert clipped(-1.0, 1.0) == pytest.approx(0.0, abs=1e-12)
    assert clipped(-inf, inf) == pytest.approx(d.mean().item())


def test_clipped_mean_of_a_skewed_mixture_matches_its_samples():
    d = AsymmetricLaplaceMixture(*(torch.tensor([v]) for v in ([0.2, 2.0], [0.5, 1.5], [0.2, 0.7], [0.4, 0.6])))
    draws = d.sample(400_000, torch.Generator().manual_seed(0))
    assert d.clipped_mean(torch.tensor(0.5), torch.tensor(4.0)).item() == pytest.approx(draws.clamp(0.5, 4.0).mean().item(), abs=0.01)
    assert d.mean().item() == pytest.approx(draws.mean().item(), abs=0.02)


def test_crps_of_the_scoring_quantile_grid_is_the_laplace_closed_form():
    """The evaluation's CRPS of a distribution is crps_ensemble of its quantiles at SCORING_LEVELS: within 0.05 % of a
    Laplace's closed form b (|z| + e^-|z| - 3/4)."""
    d = _ald([0.3], [1.0], [0.5])  # a Laplace of scale 2 around 0.3
    grid = d.quantile(torch.tensor(SCORING_LEVELS)).numpy()
    obs = np.linspace(-6.0, 6.0, 25)
    assert crps_ensemble(obs, np.repeat(grid, obs.size, axis=0)) == pytest.approx(crps_laplace(obs, 0.3, 2.0), rel=5e-4)


def test_pinball_loss_by_hand():
    quantiles, levels = torch.tensor([[0.0, 1.0], [0.0, 1.0]]), [0.1, 0.9]
    # y = 2: 0.1 * 2 and 0.9 * 1; y = -1: 0.9 * 1 and 0.1 * 2; mean over the two levels
    assert pinball_loss(quantiles, torch.tensor([2.0, -1.0]), levels).tolist() == pytest.approx([0.55, 0.55])


def test_quantiles_between_trained_levels_are_linear():
    values = torch.tensor([[0.0, 1.0, 3.0]])
    assert interpolate_quantiles(values, [0.1, 0.5, 0.9], [0.3, 0.7, 0.9, 0.1]).tolist()[0] == pytest.approx([0.5, 2.0, 3.0, 0.0])


def test_head_output_becomes_valid_parameters_and_back():
    raw = torch.randn(4, 3, 8) * 5
    d = AsymmetricLaplaceMixture.from_head_output(raw)
    assert (d.scale > 0).all() and ((d.asymmetry > 0) & (d.asymmetry < 1)).all()
    assert torch.allclose(d.weight.sum(-1), torch.ones(4, 3))
    again = AsymmetricLaplaceMixture.from_parameters(d.parameters())
    assert torch.equal(again.parameters(), d.parameters())
