"""Hydrological metrics (NSE, KGE, RMSE, ubRMSE, Pearson r) as an ``evaluate`` module.

Load it offline by path (the module name is the file stem, ``hydro_metrics``)::

    import evaluate
    metric = evaluate.load("/path/to/stefaland_hf/evaluate_metric/hydro_metrics.py")
    # or: from stefaland_hf.metrics import load_evaluate_metric; metric = load_evaluate_metric()

    metric.compute(predictions=sim, references=obs, site=site_ids)

Inputs (one element per time step, flattened over sites):

* ``predictions``: simulated values (float32; NaN allowed),
* ``references``: observed values (float32; NaN = missing observation),
* ``site`` (optional): site/basin id (str or int) of each element. Metrics are
  computed per site over the time steps where both values are finite, then
  aggregated with the median over sites (NaN sites ignored), as in the
  StefaLand paper. Without ``site`` all elements form a single site.

Output: ``{"nse", "kge", "rmse", "ubrmse", "corr", "n_sites"}``.
The numerical work is done by :mod:`stefaland_hf.metrics`.
"""

import datasets
import evaluate
import numpy as np

from stefaland_hf.metrics import site_metrics, summarize

_CITATION = """\
@article{stefaland2025,
  title={StefaLand: an efficient geoscience foundation model that improves dynamic land-surface predictions},
  journal={arXiv preprint arXiv:2509.17942},
  year={2025}
}
@article{gupta2009kge,
  title={Decomposition of the mean squared error and NSE performance criteria},
  author={Gupta, Hoshin V. and Kling, Harald and Yilmaz, Koray K. and Martinez, Guillermo F.},
  journal={Journal of Hydrology}, volume={377}, pages={80--91}, year={2009}
}
"""

_DESCRIPTION = """\
Per-site hydrological skill scores (Nash-Sutcliffe efficiency, Kling-Gupta
efficiency 2009, RMSE, unbiased RMSE and Pearson correlation), computed on the
time steps where both prediction and reference are finite, and aggregated by the
median over sites.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): simulated values.
    references (`list` of `float`): observed values (NaN for missing days).
    site (`list` of `str` or `int`, optional): site id of each element; metrics
        are computed per site then the median over sites is returned.
Returns:
    nse, kge, rmse, ubrmse, corr (`float`): medians over sites (NaN if undefined
        at every site), n_sites (`int`): number of distinct sites.
Examples:
    >>> metric = evaluate.load("hydro_metrics.py")
    >>> metric.compute(predictions=[1.0, 2.0, 3.0], references=[1.0, 2.0, 3.0])["nse"]
    1.0
"""

_ALL_SITES = "__all__"
_OUTPUT_NAMES = {"nse": "nse", "kge": "kge", "rmse": "rmse", "ubrmse": "ubrmse", "pearson_r": "corr"}


def _default_site(site, predictions):
    if site is None and predictions is not None:
        return [_ALL_SITES] * len(predictions)
    return site


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class HydroMetrics(evaluate.Metric):
    """NSE/KGE/RMSE/ubRMSE/Corr medians over sites."""

    def _info(self):
        value = datasets.Value("float32")
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features({"predictions": value, "references": value, "site": datasets.Value("string")}),
                datasets.Features({"predictions": value, "references": value, "site": datasets.Value("int64")}),
            ],
            reference_urls=["https://arxiv.org/abs/2509.17942"],
        )

    # ``site`` is optional: fill a single dummy site when it is not given.
    def add_batch(self, *, predictions=None, references=None, site=None, **kwargs):
        """Add a batch of predictions/references (and optional site ids)."""
        return super().add_batch(
            predictions=predictions, references=references, site=_default_site(site, predictions), **kwargs
        )

    def add(self, *, prediction=None, reference=None, site=None, **kwargs):
        """Add one prediction/reference (and optional site id)."""
        if site is None and prediction is not None:
            site = _ALL_SITES
        return super().add(prediction=prediction, reference=reference, site=site, **kwargs)

    def compute(self, *, predictions=None, references=None, site=None, **kwargs):
        """Compute the median-over-sites metrics (``site`` optional)."""
        return super().compute(
            predictions=predictions, references=references, site=_default_site(site, predictions), **kwargs
        )

    def _compute(self, predictions, references, site=None):
        pred = np.asarray(predictions, dtype=np.float64)
        ref = np.asarray(references, dtype=np.float64)
        if site is None:
            site = [_ALL_SITES] * len(pred)
        site_arr = np.asarray(site)
        ids, inverse = np.unique(site_arr, return_inverse=True)
        # Build a ragged [S, T_max] NaN-padded matrix (time order within a site is irrelevant for these metrics).
        counts = np.bincount(inverse, minlength=len(ids))
        t_max = int(counts.max()) if len(counts) else 0
        obs = np.full((len(ids), t_max), np.nan)
        sim = np.full((len(ids), t_max), np.nan)
        order = np.argsort(inverse, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        pos = np.arange(len(order)) - np.repeat(starts, counts)
        obs[inverse[order], pos] = ref[order]
        sim[inverse[order], pos] = pred[order]
        per_site = site_metrics(obs, sim, metrics=tuple(_OUTPUT_NAMES))
        med = summarize(per_site)
        result = {_OUTPUT_NAMES[k]: v for k, v in med.items()}
        result["n_sites"] = int(len(ids))
        return result
