"""Inside a trained differentiable-HBV model: its stores, fluxes and parameters for chosen basins.

Given a finetuned ``hbv`` model folder (``.../model``) or ``resconn_hbv`` adapter folder (``.../adapter``, on the base
it names or ``--base``), a dataset and basins, it predicts each basin over ``--period`` with the windows the model was
trained with (``finetuning.json``: days before the period spin up the stores) and writes to ``--out``:

- ``states_<basin>.png``: precipitation, observed and simulated streamflow; snowpack (SWE); soil moisture against
  the field capacity; the upper zone and the lower (groundwater) zone; ET against PET (component means, mm);
- ``parameters_<basin>.png``: every parameter of every component within its range (static parameters as they are on
  the period's last day, dynamic ones over the period), and the routing unit hydrograph;
- ``parameter_map.png`` (two or more basins): each parameter's component mean on the basins' coordinates;
- ``parameters.csv``: the component mean of every parameter per basin (dynamic ones: their mean over the period).

Each window is simulated with its own spin-up, as evaluation does, so a series may jump where one window's days end
and the next's begin.

    python benchmarks/hbv_figures.py --model runs/bench/folds/fold_0/hbv/model --dataset camels_us \\
        --data-dir ../shared/data/camels_us --basins 01022500 01547700 --period 1995-10-01 1999-09-30 --out figures/hbv
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch

from stefaland_hf.data import load_site_dataset
from stefaland_hf.differentiable_hbv import COMPONENT_PARAMETERS, GAMMA_ROUTING_DAYS, HBV_PARAMETER_RANGES, gamma_unit_hydrograph
from stefaland_hf.evaluation import predict_sites
from stefaland_hf.experiments.plots import plot_observed
from stefaland_hf.experiments.prediction import load_trained_model
from stefaland_hf.modeling_stefaland import StefaLandHBVPhysics

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


SERIES = ("streamflow", "precipitation", "pet", "evapotranspiration", "snowpack", "soil_moisture", "upper_zone", "lower_zone")


def hbv_forward(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """A ``predict_sites`` forward returning, per day, the streamflow, the series of :data:`SERIES` after it, every
    parameter x component and the two routing parameters: [B, L, 1, M]."""
    out = model(**batch, return_hbv_states=True)
    states = out.hbv
    series = [out.prediction[..., 0]] + [getattr(states, name) for name in SERIES[1:]]
    length = out.prediction.shape[1]
    routing = states.routing_parameters.unsqueeze(1).expand(-1, length, -1)
    packed = torch.cat([torch.stack(series, -1), states.parameters.flatten(2), routing], -1)
    return packed.unsqueeze(2)


def unpack(values: np.ndarray, nmul: int) -> dict[str, np.ndarray]:
    """[P, M] of one basin from :func:`hbv_forward` -> named series [P], parameters [P, n, nmul], routing [P, 2]."""
    n_series, n_parameters = len(SERIES), len(COMPONENT_PARAMETERS)
    out = {name: values[:, i] for i, name in enumerate(SERIES)}
    out["parameters"] = values[:, n_series : n_series + n_parameters * nmul].reshape(-1, n_parameters, nmul)
    out["routing"] = values[:, n_series + n_parameters * nmul :]
    return out


def plot_states(dates, basin: dict, observed: np.ndarray, site_id: str, path: Path) -> None:
    plt = _pyplot()
    fc = basin["parameters"][-1, COMPONENT_PARAMETERS.index("FC")].mean()
    fig, axes = plt.subplots(5, 1, figsize=(11, 12), sharex=True)
    axes[0].bar(dates, basin["precipitation"], color="tab:blue", width=1.0, label="precipitation (mm/day)")
    axes[0].invert_yaxis()
    axes[0].legend(loc="lower left", fontsize=8)
    flow = axes[0].twinx()
    plot_observed(flow, dates, observed, "observed streamflow")
    flow.plot(dates, basin["streamflow"], color="tab:red", lw=1.0, label="simulated streamflow")
    flow.set_ylabel("mm/day")
    flow.legend(loc="upper right", fontsize=8)
    axes[1].plot(dates, basin["snowpack"], color="tab:cyan")
    axes[1].set_ylabel("snowpack (SWE, mm)")
    axes[2].plot(dates, basin["soil_moisture"], color="tab:brown", label="soil moisture")
    axes[2].axhline(fc, color="tab:brown", ls="--", lw=0.8, label=f"field capacity (mean {fc:.0f} mm)")
    axes[2].set_ylabel("soil store (mm)")
    axes[2].legend(fontsize=8)
    axes[3].plot(dates, basin["upper_zone"], color="tab:orange", label="upper zone")
    axes[3].plot(dates, basin["lower_zone"], color="tab:green", label="lower zone (groundwater)")
    axes[3].set_ylabel("mm")
    axes[3].legend(fontsize=8)
    axes[4].plot(dates, basin["pet"], color="tab:gray", lw=0.8, label="PET")
    axes[4].plot(dates, basin["evapotranspiration"], color="tab:green", lw=0.8, label="ET")
    axes[4].set_ylabel("mm/day")
    axes[4].legend(fontsize=8)
    fig.suptitle(f"{site_id}: HBV stores and fluxes (means over the components)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_parameters(basin: dict, dynamic: list[str], site_id: str, path: Path) -> None:
    plt = _pyplot()
    parameters = basin["parameters"]
    nmul = parameters.shape[-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [3, 1]})
    for i, name in enumerate(COMPONENT_PARAMETERS):
        low, high = HBV_PARAMETER_RANGES[name]
        scaled = (parameters[:, i] - low) / (high - low)  # [P, nmul]
        values = scaled.mean(0) if name in dynamic else scaled[-1]
        left.scatter(np.full(nmul, i), values, s=12, color="tab:purple" if name in dynamic else "tab:blue", alpha=0.7)
    left.set_xticks(range(len(COMPONENT_PARAMETERS)), [f"{n}\n{HBV_PARAMETER_RANGES[n][0]:g}..{HBV_PARAMETER_RANGES[n][1]:g}"
                                                       for n in COMPONENT_PARAMETERS], fontsize=7)
    left.set_ylim(-0.03, 1.03)
    left.set_ylabel("position in the range (0 = low, 1 = high)")
    left.set_title(f"{nmul} components; purple: dynamic (mean over the period)")
    shape, scale = basin["routing"][-1]
    weights = gamma_unit_hydrograph(torch.tensor([shape]), torch.tensor([scale]))[0].numpy()
    right.bar(np.arange(GAMMA_ROUTING_DAYS) + 0.5, weights, width=0.9, color="tab:red")
    right.set_xlabel("days")
    right.set_title(f"unit hydrograph (shape {shape:.2f}, scale {scale:.2f} d)", fontsize=9)
    fig.suptitle(f"{site_id}: HBV parameters")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_parameter_map(longitude, latitude, means: np.ndarray, path: Path) -> None:
    plt = _pyplot()
    columns = 4
    rows = -(-len(COMPONENT_PARAMETERS) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
    for i, name in enumerate(COMPONENT_PARAMETERS):
        ax = axes.flat[i]
        low, high = HBV_PARAMETER_RANGES[name]
        points = ax.scatter(longitude, latitude, c=means[:, i], vmin=low, vmax=high, cmap="viridis", s=25)
        fig.colorbar(points, ax=ax)
        ax.set_title(name, fontsize=9)
    for ax in axes.flat[len(COMPONENT_PARAMETERS):]:
        ax.axis("off")
    fig.suptitle("HBV parameters (component means) by basin")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a finetuned hbv model/ folder or resconn_hbv adapter/ folder")
    parser.add_argument("--base", default=None, help="the pretrained base of a resconn_hbv adapter (default: the one it names)")
    parser.add_argument("--dataset", default="synthland", help="site dataset (synthland, camels_us, ...)")
    parser.add_argument("--config-name", default=None, help="builder config (synthland: tiny|default|large)")
    parser.add_argument("--data-dir", default=None, help="raw release folder (camels_us)")
    parser.add_argument("--cache-dir", default=None, help="datasets cache folder")
    parser.add_argument("--basins", nargs="+", required=True, help="site ids")
    parser.add_argument("--period", nargs=2, required=True, metavar=("START", "END"))
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args(argv)

    model, record = load_trained_model(args.model, args.base)
    head = (model.get_base_model() if hasattr(model, "get_base_model") else model).running_head()
    if not isinstance(head, StefaLandHBVPhysics):
        raise SystemExit(f"--model {args.model}: its head ({type(head).__name__}) has no HBV physics (head_mode hbv or resconn_hbv)")
    if record is None:
        raise SystemExit(f"--model {args.model}: no finetuning.json beside it, so the windows it was trained with are unknown")
    dataset = load_site_dataset(args.dataset, config_name=args.config_name, data_dir=args.data_dir, cache_dir=args.cache_dir)
    ids = list(dataset["site_id"])
    unknown = [basin for basin in args.basins if basin not in ids]
    if unknown:
        raise SystemExit(f"--basins: {unknown} are not in the dataset (e.g. {ids[:3]})")
    sites = np.array([ids.index(basin) for basin in args.basins])
    config = model.config
    result = predict_sites(
        model, dataset, sites, tuple(args.period), seq_len=record["seq_len"], warmup=record["warmup"], batch_size=16,
        dynamic_variables=config.dynamic_variables, static_variables=config.static_variables, target_variables=["streamflow"],
        forward=hbv_forward,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dates, means = result["dates"], []
    for position, site_id in enumerate(result["site_ids"]):
        basin = unpack(result["predictions"][position, :, 0], head.nmul)
        plot_states(dates, basin, result["observations"][position, :, 0], site_id, out / f"states_{site_id}.png")
        plot_parameters(basin, list(head.dynamic_parameters), site_id, out / f"parameters_{site_id}.png")
        means.append(np.nanmean(basin["parameters"], axis=(0, 2)))
    means = np.array(means)
    with open(out / "parameters.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["site_id", *COMPONENT_PARAMETERS])
        writer.writerows([[site_id, *(f"{v:.6g}" for v in row)] for site_id, row in zip(result["site_ids"], means)])
    if len(sites) > 1:
        latitude = np.asarray(dataset["latitude"], dtype=float)[sites]
        longitude = np.asarray(dataset["longitude"], dtype=float)[sites]
        plot_parameter_map(longitude, latitude, means, out / "parameter_map.png")
    print(f"wrote {len(sites)} basins' HBV figures and parameters.csv to {out}")


if __name__ == "__main__":
    main()
