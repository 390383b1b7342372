"""Zero-shot reconstruction: how well a pretrained encoder fills in what it is not shown, before any finetuning.

The paper judges its encoders this way. For each forcing, the variable is hidden over every whole
window of the held-out sites, together with its pretraining masking unit (its group and the variables
computed from it or it from them, :func:`hidden_with`), and reconstructed from the other variables; the
score is the NSE of the reconstructed daily series per site, summarized by the median over sites. For each static
group, the whole group is hidden and each member is reconstructed (averaged over the site's
windows); its score is the NSE across sites (1 - SSE / variance of the true values), since an
attribute has one value per site. NSE is unaffected by z-scoring, so models with different
normalizations compare directly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..data.site_arrays import SiteArrays
from ..evaluation import iter_site_sequences, model_device, predict_sites
from ..masking import dynamic_masking_units
from ..metrics import site_metrics

__all__ = ["zero_shot_reconstruction", "reconstruction_table", "check_never_seen"]


def _usable(a: SiteArrays, names: Sequence[str], present: Sequence[str]) -> list[str]:
    return [n for n in names if n in present]


def hidden_with(variable: str, config) -> list[int]:
    """The dynamic columns hidden while ``variable`` is scored: it and its pretraining masking unit (its group and
    derivation family; shown temperature_min and temperature_mean, temperature_max = 2 mean - min exactly)."""
    j = config.dynamic_variables.index(variable)
    return sorted({j, *(i for unit in dynamic_masking_units(config) if j in unit for i in unit)})


def _dynamic_scores(model, a: SiteArrays, sites, period, seq_len, batch_size, variables) -> dict[str, float]:
    config = model.config
    p0, p1 = a.period_index(period)
    scores = {}
    for variable in variables:
        j = config.dynamic_variables.index(variable)
        hidden = hidden_with(variable, config)

        def reconstruct(model, batch, j=j, hidden=hidden):
            mask = torch.zeros(batch["x_dynamic"].shape, dtype=torch.bool, device=batch["x_dynamic"].device)
            mask[..., hidden] = True
            out = model(x_dynamic=batch["x_dynamic"], x_static=batch["x_static"], dynamic_mask=mask)
            return out.dynamic_reconstruction[..., j : j + 1]

        result = predict_sites(
            model, a, sites, (p0, p1), seq_len, warmup=0, batch_size=batch_size,
            dynamic_variables=config.dynamic_variables, static_variables=config.static_variables,
            target_variables=[variable], context_before_period=False, forward=reconstruct,
        )
        observed = a.gather_dynamic(sites, np.full(len(sites), p0), p1 - p0, a.column_map("dynamic", [variable]))
        nse = site_metrics(observed[..., 0], result["predictions"][..., 0], ["nse"])["nse"]
        scores[variable] = float(np.nanmedian(nse)) if np.isfinite(nse).any() else float("nan")
    return scores


def _static_scores(model, a: SiteArrays, sites, period, seq_len, batch_size, groups: dict[str, list[str]]) -> dict[str, float]:
    config = model.config
    device = model_device(model)
    scores = {}
    truth = a.static_matrix(config.static_variables)[sites]  # [S, C]
    for members in groups.values():
        cols = [config.static_variables.index(n) for n in members]
        total = np.zeros((len(sites), len(cols)))
        count = np.zeros(len(sites))
        for batch, site_pos, _ in iter_site_sequences(
            a, sites, period, seq_len, 0, batch_size, config.dynamic_variables, config.static_variables, [], False
        ):
            x_static = torch.from_numpy(batch["x_static"]).to(device)
            mask = torch.zeros(x_static.shape, dtype=torch.bool, device=device)
            mask[:, cols] = True
            out = model(x_dynamic=torch.from_numpy(batch["x_dynamic"]).to(device), x_static=x_static, static_mask=mask)
            np.add.at(total, site_pos, out.static_reconstruction[:, cols].float().cpu().numpy())
            np.add.at(count, site_pos, 1)
        estimate = total / count[:, None]
        for k, name in enumerate(members):
            obs, sim = truth[:, cols[k]], estimate[:, k]
            keep = np.isfinite(obs)
            if keep.sum() < 3 or np.var(obs[keep]) == 0:
                scores[name] = float("nan")
                continue
            scores[name] = float(1 - np.sum((sim[keep] - obs[keep]) ** 2) / np.sum((obs[keep] - obs[keep].mean()) ** 2))
    return scores


def zero_shot_reconstruction(model, data, sites, period, seq_len: int = 365, batch_size: int = 64) -> dict:
    """Scores of one pretrained model on ``sites`` x ``period``: ``{"dynamic": {var: median NSE}, "static": {var: NSE}}``.

    Only variables the model knows and the data holds are scored; static groups are the model's
    masking groups (variables outside every group count as their own group).
    """
    a = SiteArrays.wrap(data)
    sites = np.asarray(sites, dtype=np.int64)
    model.eval()
    config = model.config
    dynamic = _usable(a, config.dynamic_variables, a.dynamic_variables)
    present_static = set(a.static_variables) | {"latitude", "longitude"}
    grouped = {n for members in config.static_groups.values() for n in members}
    groups = {g: [n for n in m if n in present_static] for g, m in config.static_groups.items()}
    groups.update({n: [n] for n in config.static_variables if n not in grouped and n in present_static})
    groups = {g: m for g, m in groups.items() if m}
    with torch.no_grad():
        return {
            "dynamic": _dynamic_scores(model, a, sites, period, seq_len, batch_size, dynamic),
            "static": _static_scores(model, a, sites, period, seq_len, batch_size, groups),
        }


def reconstruction_table(results: dict[str, dict]) -> str:
    """Markdown: one row per variable, one column per model (variables a model lacks are blank)."""
    models = list(results)
    lines = ["| variable | kind | " + " | ".join(models) + " |", "| --- | --- |" + " ---: |" * len(models)]
    for kind, label in (("dynamic", "forcing, median NSE over sites"), ("static", "attribute, NSE across sites")):
        names = []
        for r in results.values():
            names += [n for n in r[kind] if n not in names]
        for name in names:
            cells = [f"{results[m][kind][name]:.3f}" if name in results[m][kind] and np.isfinite(results[m][kind][name]) else "" for m in models]
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def check_never_seen(model, name: str, site_ids: Sequence[str], builder: str | None = None) -> None:
    """Refuse scoring ``model`` on sites it was pretrained on: those its ``pretraining_sites.json`` (written by every
    pretraining; sources of another dataset ``builder`` aside) lists, and those its ``zero_shot_sites.json`` (written by
    a recipe's pretraining) does not list. The score would not be zero-shot. A model with neither file is scored with
    a warning."""
    from ..training.pretrain import PRETRAINING_SITES_FILE
    from .release import ZERO_SHOT_FILE

    folder = Path(str(getattr(model, "name_or_path", "")))
    record = folder / PRETRAINING_SITES_FILE
    if record.is_file():
        sources = json.loads(record.read_text())
        pretrained = {
            site for source in sources.values() if builder is None or source.get("builder") in (None, builder)
            for site in source["site_ids"]
        }
        seen = [site for site in site_ids if site in pretrained]
        if seen:
            raise ValueError(
                f"--sites: {len(seen)} site(s) were in the pretraining of {name} ({record}), e.g. {seen[:5]}: their "
                "reconstruction is not zero-shot; score sites it never saw"
            )
    listing = folder / ZERO_SHOT_FILE
    if not listing.is_file():
        if not record.is_file():
            print(f"warning: {name} records no pretraining sites ({PRETRAINING_SITES_FILE}): cannot check that --sites are unseen")
        return
    held_out = {site for ids in json.loads(listing.read_text()).values() for site in ids}
    seen = [site for site in site_ids if site not in held_out]
    if seen:
        raise ValueError(f"--sites: {len(seen)} site(s) were in the pretraining of {name} (not in {listing}), e.g. {seen[:5]}")


def run_cli(args) -> int:
    from ..data import load_site_dataset
    from ..hub.names import from_pretrained
    from ..modeling_stefaland import StefaLandForPretraining

    if args.dataset != "camels_us" and (args.extra_data_dir or args.ungauged):
        raise ValueError(f"--extra-data-dir/--ungauged: apply to --dataset camels_us, not {args.dataset}")
    dataset = load_site_dataset(
        args.dataset, data_dir=args.data_dir, extra_data_dirs=args.extra_data_dir or None, ungauged=args.ungauged,
    ) if args.dataset == "camels_us" else load_site_dataset(args.dataset, data_dir=args.data_dir)
    ids = list(dataset["site_id"])
    wanted = [line.strip() for line in Path(args.sites).read_text().splitlines() if line.strip()]
    missing = [s for s in wanted if s not in ids]
    if missing:
        raise ValueError(f"--sites {args.sites}: {len(missing)} site(s) not in the dataset, e.g. {missing[:5]}")
    sites = [ids.index(s) for s in wanted]
    results = {}
    for name in args.models:
        model = from_pretrained(name, StefaLandForPretraining)
        check_never_seen(model, name, wanted, dataset.info.builder_name)
        results[name] = zero_shot_reconstruction(model, dataset, sites, tuple(args.period), args.seq_len, args.batch_size)
        print(f"{name}: scored {len(results[name]['dynamic'])} forcings, {len(results[name]['static'])} attributes")
    table = reconstruction_table(results)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "reconstruction.json").write_text(json.dumps({"sites": wanted, "period": args.period, "results": results}, indent=1))
    (out / "reconstruction.md").write_text(table)
    print(table)
    return 0
