"""The predictive distributions of the distributional task heads (``StefaLandConfig.output_distribution``).

``cmal``: a countable mixture of asymmetric Laplace distributions (Klotz et al. 2022, HESS 26, 1673; the CMAL head of
neuralhydrology), fitted by its negative log-likelihood. ``quantile``: a set of quantiles fitted by the pinball loss.
Both live in the normalized target space (z-scores of the target); the heads map what they return to physical units.
Quantiles are what survives that mapping exactly: the denormalization and the output range (clamp) are monotone, so
the quantile of the mapped distribution is the mapped quantile.

Beside ``modeling_stefaland.py`` and imported by it relatively (torch only), so that ``save_pretrained`` exports it
with the model code for ``trust_remote_code=True``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

# Floors that keep the likelihood finite: a scale of 0 or an asymmetry of 0 or 1 would make a density infinite.
SCALE_FLOOR = 1e-4
ASYMMETRY_MARGIN = 1e-4
QUANTILE_BISECTIONS = 36  # halvings of the bracket of a mixture quantile: 1.5e-11 of its width, below float32's resolution
CPU_CHUNK_ELEMENTS = 2**18  # values per bisection step on the CPU (rows x components x levels): a few MiB, cache-sized


class AsymmetricLaplaceMixture:
    """A mixture of asymmetric Laplace distributions, each component parameters ``[..., C]``.

    Component k has location ``loc``, scale ``scale`` > 0 and asymmetry ``asymmetry`` in (0, 1) (the share of its mass
    below ``loc``); density ``tau (1 - tau) / b * exp(-rho_tau((y - loc) / b))``, ``rho_tau(u) = u (tau - [u < 0])``.
    ``weight`` sums to 1 over the components.
    """

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, asymmetry: torch.Tensor, weight: torch.Tensor):
        self.loc, self.scale, self.asymmetry, self.weight = loc, scale, asymmetry, weight

    @classmethod
    def from_head_output(cls, raw: torch.Tensor) -> "AsymmetricLaplaceMixture":
        """``raw [..., 4C]`` from a head's output layer -> the mixture: locations as they are, scales through softplus,
        asymmetries through a sigmoid, weights through a softmax (each block C wide, in that order)."""
        loc, scale, asymmetry, weight = raw.float().chunk(4, dim=-1)
        return cls(
            loc,
            F.softplus(scale) + SCALE_FLOOR,
            ASYMMETRY_MARGIN + (1 - 2 * ASYMMETRY_MARGIN) * torch.sigmoid(asymmetry),
            torch.softmax(weight, dim=-1),
        )

    @classmethod
    def from_parameters(cls, parameters: torch.Tensor) -> "AsymmetricLaplaceMixture":
        """The inverse of :meth:`parameters`: ``[..., 4C]`` locations, scales, asymmetries, weights."""
        return cls(*parameters.chunk(4, dim=-1))

    def parameters(self) -> torch.Tensor:
        """``[..., 4C]``: locations, scales, asymmetries and weights, each C wide."""
        return torch.cat([self.loc, self.scale, self.asymmetry, self.weight], dim=-1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """log density of ``value [...]`` (the loss is its negative)."""
        u = (value.unsqueeze(-1) - self.loc) / self.scale
        tau = self.asymmetry
        check = F.relu(u) * tau + F.relu(-u) * (1 - tau)
        component = torch.log(tau) + torch.log1p(-tau) - torch.log(self.scale) - check
        return torch.logsumexp(torch.log(self.weight) + component, dim=-1)

    def cdf(self, x: torch.Tensor) -> torch.Tensor:
        """``x [..., Q]`` -> P(X <= x) ``[..., Q]``: per component ``tau exp(-(1 - tau) |d| / b)`` below its location,
        ``1 - (1 - tau) exp(-tau d / b)`` above (one exponential per component and value)."""
        loc, b, tau, w = (t.unsqueeze(-1) for t in (self.loc, self.scale, self.asymmetry, self.weight))
        d = x.unsqueeze(-2) - loc
        below = d < 0
        decay = torch.exp(torch.where(below, (1 - tau) / b * d, -tau / b * d))
        return (torch.where(below, 0.0, w) + torch.where(below, w * tau, -w * (1 - tau)) * decay).sum(-2)

    def _component_quantile(self, levels: torch.Tensor) -> torch.Tensor:
        """``levels [Q]`` -> each component's quantiles ``[..., C, Q]`` (closed form)."""
        p = levels.to(self.loc)
        loc, b, tau = (t.unsqueeze(-1) for t in (self.loc, self.scale, self.asymmetry))
        below = loc + b / (1 - tau) * torch.log(p / tau)
        above = loc - b / tau * torch.log((1 - p) / (1 - tau))
        return torch.where(p <= tau, below, above)

    def quantile(self, levels: torch.Tensor | Sequence[float]) -> torch.Tensor:
        """``levels [Q]`` in (0, 1) -> the mixture's quantiles ``[..., Q]``.

        One component: the closed form. Several: bisection on the mixture CDF between the smallest and the largest
        component quantile of the same level (the mixture quantile lies between them), in float64; on the CPU in
        chunks of rows that stay in cache (about 5x faster than one pass over a whole batch).
        """
        levels = torch.as_tensor(levels, dtype=torch.float64, device=self.loc.device)
        if self.loc.shape[-1] == 1:
            return self._component_quantile(levels.to(self.loc.dtype)).squeeze(-2)
        components = self.loc.shape[-1]
        flat = [t.reshape(-1, components).double() for t in (self.loc, self.scale, self.asymmetry, self.weight)]
        rows = flat[0].shape[0]
        step = rows if self.loc.device.type != "cpu" else max(1, CPU_CHUNK_ELEMENTS // (components * levels.numel()))
        parts = [AsymmetricLaplaceMixture(*(t[i : i + step] for t in flat))._bisect(levels) for i in range(0, rows, step)]
        quantiles = torch.cat(parts) if parts else torch.empty(0, levels.numel(), dtype=torch.float64, device=self.loc.device)
        return quantiles.reshape(*self.loc.shape[:-1], levels.numel()).to(self.loc.dtype)

    def _bisect(self, levels: torch.Tensor) -> torch.Tensor:
        bounds = self._component_quantile(levels)
        low, high = bounds.amin(-2), bounds.amax(-2)
        for _ in range(QUANTILE_BISECTIONS):
            middle = (low + high) / 2
            below = self.cdf(middle) < levels
            low, high = torch.where(below, middle, low), torch.where(below, high, middle)
        return (low + high) / 2

    def mean(self) -> torch.Tensor:
        """``[...]``: ``sum_k w_k (loc_k + b_k (1 - 2 tau_k) / (tau_k (1 - tau_k)))``."""
        tau = self.asymmetry
        component = self.loc + self.scale * (1 - 2 * tau) / (tau * (1 - tau))
        return (self.weight * component).sum(-1)

    def _expected_excess(self, threshold: torch.Tensor) -> torch.Tensor:
        """``E[(X - c)+]`` for a finite ``threshold`` c broadcastable to ``[...]``."""
        c = threshold.unsqueeze(-1)
        loc, b, tau = self.loc, self.scale, self.asymmetry
        d = c - loc
        right_tail = (1 - tau) * b / tau * torch.exp(-tau * F.relu(d) / b)  # the excess of the part above max(c, loc)
        # c below loc: the mass between c and loc adds (loc - c) minus what lies below c's share of that stretch
        between = F.relu(-d) - tau * b / (1 - tau) * (1 - torch.exp(-(1 - tau) * F.relu(-d) / b))
        return (self.weight * (right_tail + between)).sum(-1)

    def clipped_mean(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """``E[min(max(X, low), high)]``: the mean of the distribution whose mass outside [low, high] sits at the bound
        (the clamp output range). ``low``/``high`` broadcast to ``[...]``; -inf/+inf mean no bound."""
        low, high = torch.broadcast_tensors(low.to(self.loc), high.to(self.loc))
        has_low, has_high = torch.isfinite(low), torch.isfinite(high)
        finite_low, finite_high = torch.where(has_low, low, 0.0), torch.where(has_high, high, 0.0)
        lower_part = torch.where(has_low, finite_low + self._expected_excess(finite_low), self.mean())
        return lower_part - torch.where(has_high, self._expected_excess(finite_high), 0.0)

    def sample(self, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``count`` independent draws ``[..., count]``: a component by its weight, then its inverse CDF."""
        shape = (*self.loc.shape[:-1], count)
        pick, level = (torch.rand(shape, generator=generator, device=self.loc.device, dtype=self.loc.dtype) for _ in range(2))
        component = torch.searchsorted(self.weight.cumsum(-1).contiguous(), pick.contiguous()).clamp(max=self.loc.shape[-1] - 1)
        loc, b, tau = (t.gather(-1, component) for t in (self.loc, self.scale, self.asymmetry))
        level = level.clamp(min=torch.finfo(level.dtype).tiny, max=1 - torch.finfo(level.dtype).eps)
        return torch.where(level <= tau, loc + b / (1 - tau) * torch.log(level / tau), loc - b / tau * torch.log((1 - level) / (1 - tau)))


def pinball_loss(quantiles: torch.Tensor, target: torch.Tensor, levels: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """``quantiles [..., Q]`` at ``levels [Q]``, ``target [...]`` -> the pinball loss averaged over the levels ``[...]``:
    ``rho_tau(y - q) = max(tau (y - q), (tau - 1) (y - q))``, minimized in expectation by the tau-quantile."""
    levels = torch.as_tensor(levels, dtype=quantiles.dtype, device=quantiles.device)
    error = target.unsqueeze(-1) - quantiles
    return torch.maximum(levels * error, (levels - 1) * error).mean(-1)


def interpolate_quantiles(values: torch.Tensor, levels: Sequence[float], wanted: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """``values [..., Q]`` at the increasing ``levels`` -> values at ``wanted [W]`` on the piecewise-linear quantile
    function through them. Every wanted level must lie within ``[levels[0], levels[-1]]`` (checked by the caller)."""
    known = torch.as_tensor(levels, dtype=values.dtype, device=values.device)
    wanted = torch.as_tensor(wanted, dtype=values.dtype, device=values.device)
    if known.numel() == 1:
        return values.expand(*values.shape[:-1], wanted.numel())
    right = torch.searchsorted(known, wanted).clamp(1, known.numel() - 1)
    fraction = ((wanted - known[right - 1]) / (known[right] - known[right - 1])).clamp(0, 1)
    return values[..., right - 1] * (1 - fraction) + values[..., right] * fraction


__all__ = ["AsymmetricLaplaceMixture", "pinball_loss", "interpolate_quantiles"]
