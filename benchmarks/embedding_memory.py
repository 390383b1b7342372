"""Does the embedding at day t carry the past? Linear probes of frozen encoders for antecedent precipitation.

Streamflow depends on the water a basin received over the past weeks and months. This probe asks whether the frozen
StefaLand embedding E_t (``dynamic_hidden_state``) holds it: a ridge regression from E_t to the precipitation summed
over the previous 7, 30 and 90 days (day t included), fitted on half of the basins and scored (R²) on the other half.
Each given encoder is compared with a randomly initialized encoder of its exact configuration (the control), and with
the same probe on the day's own forcings (which hold the current day only). An encoder whose pretraining taught it the
catchment's memory beats its random control; one that does not, does not.

    python benchmarks/embedding_memory.py --data-dir ../shared/data/camels_us --models modeling/stefaland-conus

A second table says what moves the embedding: the mean change of E_t when every static attribute is hidden (the
model's mask), or the precipitation, relative to the spread of E_t over days and basins. The static attributes reach
the day tokens only through attention to the one static token; a pretraining that made the days read the landscape
shows here.

Inputs: CAMELS-US basins of --data-dir over --period, non-overlapping windows of --seq-len days (the first 90 days of
each window are context only). Prints two tables; nothing is trained but the probes.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch

HORIZONS = (7, 30, 90)
CONTEXT = 90  # days of each window that only give the antecedent sums their history


def windows(model, dataset, period, seq_len: int):
    """Model-ordered batches of whole non-overlapping windows: (x_dynamic, x_static, site of each window)."""
    from stefaland_hf.evaluation import iter_site_sequences

    config = model.config
    xs, cs, sites = [], [], []
    for batch, site_pos, _ in iter_site_sequences(dataset, None, period, seq_len, warmup=0, batch_size=64,
                                                  dynamic_variables=config.dynamic_variables,
                                                  static_variables=config.static_variables, target_variables=[]):
        xs.append(np.asarray(batch["x_dynamic"]))
        cs.append(np.asarray(batch["x_static"]))
        sites.append(site_pos)
    return np.concatenate(xs), np.concatenate(cs), np.concatenate(sites)


@torch.no_grad()
def embeddings(model, x_dynamic, x_static, batch_size: int = 32) -> np.ndarray:
    out = [model(x_dynamic[i : i + batch_size], x_static[i : i + batch_size]).dynamic_hidden_state.float().numpy()
           for i in range(0, len(x_dynamic), batch_size)]
    return np.concatenate(out)


def relative_change(model, x_dynamic, x_static, embedding: np.ndarray, hide: str) -> float:
    """Mean |E_t - E_t with ``hide`` masked| over days and windows, over the mean |E_t - mean E|: ``hide`` is
    "attributes" (every static attribute) or a dynamic variable's name."""
    x_dynamic, x_static = x_dynamic.clone(), x_static.clone()
    if hide == "attributes":
        x_static[:] = float("nan")
    else:
        x_dynamic[..., list(model.config.dynamic_variables).index(hide)] = float("nan")
    hidden = embeddings(model, x_dynamic, x_static)
    spread = np.linalg.norm(embedding - embedding.mean(axis=(0, 1)), axis=-1).mean()
    return float(np.linalg.norm(embedding - hidden, axis=-1).mean() / spread)


def antecedent(precipitation: np.ndarray, days: int) -> np.ndarray:
    """[W, T] sums over the ``days`` days ending at each day (NaN where the window lacks the history)."""
    filled = np.nan_to_num(precipitation)
    cumulative = np.concatenate([np.zeros((len(filled), 1)), np.cumsum(filled, axis=1)], axis=1)
    out = np.full(precipitation.shape, np.nan)
    out[:, days - 1 :] = cumulative[:, days:] - cumulative[:, :-days]
    return out


def ridge_r2(features: np.ndarray, target: np.ndarray, train: np.ndarray, test: np.ndarray, alpha: float = 1.0) -> float:
    """R² on ``test`` rows of a ridge regression fitted on ``train`` rows (features standardized on train)."""
    features = features[:, np.isfinite(features).all(axis=0)]  # variables the data lack (all NaN) carry nothing
    keep = np.isfinite(target)
    train, test = train & keep, test & keep
    mean, std = features[train].mean(axis=0), features[train].std(axis=0) + 1e-8
    x = (features - mean) / std
    x = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    gram = x[train].T @ x[train] + alpha * np.eye(x.shape[1])
    weights = np.linalg.solve(gram, x[train].T @ target[train])
    residual = target[test] - x[test] @ weights
    return float(1.0 - residual.var() / target[test].var())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="raw CAMELS-US folder")
    parser.add_argument("--models", nargs="+", required=True, help="pretrained model folders or shipped names")
    parser.add_argument("--period", nargs=2, default=["1999-10-01", "2008-09-30"], metavar=("START", "END"))
    parser.add_argument("--seq-len", type=int, default=365)
    parser.add_argument("--seed", type=int, default=0, help="draws the random control and the basin halves")
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import stefaland_hf
    from stefaland_hf import StefaLandModel
    from stefaland_hf.data import load_site_dataset

    dataset = load_site_dataset("camels_us", data_dir=args.data_dir, cache_dir=args.cache_dir)
    rng = np.random.default_rng(args.seed)
    first_half = rng.permutation(len(dataset))[: len(dataset) // 2]
    header = "| encoder | " + " | ".join(f"R² {h}-day precipitation" for h in HORIZONS) + " |"
    print(f"\n{len(dataset)} basins ({len(first_half)} fit the probes, the others score them), {args.period[0]}..{args.period[1]}, "
          f"{args.seq_len}-day windows; torch {torch.__version__}, {torch.get_num_threads()} threads, float32\n")
    print(header + "\n" + "|---" * (len(HORIZONS) + 1) + "|")
    moved = []
    for name in args.models:
        pretrained = stefaland_hf.from_pretrained(name, StefaLandModel).eval()
        torch.manual_seed(args.seed)
        control = StefaLandModel(pretrained.config).eval()
        x, c, sites = windows(pretrained, dataset, tuple(args.period), args.seq_len)
        precipitation = x[..., list(pretrained.config.dynamic_variables).index("precipitation")]
        targets = {h: antecedent(precipitation, h)[:, CONTEXT:].reshape(-1) for h in HORIZONS}
        fit = np.repeat(np.isin(sites, first_half), args.seq_len - CONTEXT)
        rows = {"the day's own forcings": x[:, CONTEXT:].reshape(-1, x.shape[-1])}
        for label, model in ((f"{name} (pretrained)", pretrained), (f"{name}: random control", control)):
            x_dynamic, x_static = torch.as_tensor(x), torch.as_tensor(c)
            embedding = embeddings(model, x_dynamic, x_static)
            rows[label] = embedding[:, CONTEXT:].reshape(-1, model.config.d_model)
            moved.append(f"| {label} | " + " | ".join(
                f"{relative_change(model, x_dynamic, x_static, embedding, hide):.3f}" for hide in ("attributes", "precipitation")) + " |")
        for label, features in rows.items():
            cells = [f"{ridge_r2(features, targets[h], fit, ~fit):.3f}" for h in HORIZONS]
            print(f"| {label} | " + " | ".join(cells) + " |")
    print("\nMean change of E_t when an input is hidden, relative to the spread of E_t:\n")
    print("| encoder | every static attribute hidden | precipitation hidden |\n|---|---|---|")
    print("\n".join(moved))


if __name__ == "__main__":
    main()
