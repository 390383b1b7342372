"""Two CAMELS-US conventions behind numbers in the README's Data section, measured on the raw files.

1. Basin area: streamflow in mm/day divides by the forcing-file header's area (NeuralHydrology) or by
   ``area_gages2`` of ``camels_topo.txt`` (hydroDL, CAMELS' own ``q_mean``); prints their ratio over the basins.
2. Shortwave radiation: Daymet's ``srad`` is the mean over daylight hours; ``srad * dayl / 86400`` is the 24-hour
   mean that NLDAS ``DSWRF`` (the SMAP builder) and SynthLand give. Prints the factor between them over the basins'
   days, and one basin's January/July means beside those of the nearest SMAP pixel.

    python benchmarks/camels_conventions.py --camels ../shared/data/camels_us --smap ../shared/data/hydrodl_smap_conus
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from stefaland_hf.data import load_site_dataset
from stefaland_hf.data.camels_us import FORCING_COLUMNS, read_forcing_file
from stefaland_hf.data.site_arrays import SiteArrays

COLUMN = {name: i for i, name in enumerate(FORCING_COLUMNS)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--camels", type=Path, required=True, help="raw CAMELS-US folder")
    parser.add_argument("--smap", type=Path, default=None, help="hydroDL SMAP folder (for the NLDAS comparison)")
    parser.add_argument("--basin", default="01022500", help="basin for the monthly shortwave comparison")
    args = parser.parse_args()

    topo = pd.read_csv(args.camels / "camels_attributes_v2.0" / "camels_topo.txt", sep=";", dtype={"gauge_id": str}).set_index("gauge_id")
    files = sorted((args.camels / "basin_mean_forcing" / "daymet").glob("*/*_lump_cida_forcing_leap.txt"))
    ratio, factor, monthly = {}, [], None
    for path in files:
        basin = path.name[:8]
        header, dates, values = read_forcing_file(path)
        ratio[basin] = header.area / (topo.loc[basin, "area_gages2"] * 1e6)
        dayl, srad = values[:, COLUMN["dayl"]], values[:, COLUMN["srad"]]
        factor.append(86400 / dayl[np.isfinite(dayl) & (dayl > 0)])
        if basin == args.basin:
            frame = pd.DataFrame({"daylight": srad, "24 h": srad * dayl / 86400}, index=pd.DatetimeIndex(dates))
            monthly = frame["1990":"2008"].groupby(frame["1990":"2008"].index.month).mean()
    ratio = pd.Series(ratio).sort_values()
    print(f"header area / area_gages2 over {len(ratio)} basins: {ratio.min():.3f} .. {ratio.max():.3f}")
    print("lowest:", ", ".join(f"{b} {r:.3f} (mm/day x{1 / r:.2f})" for b, r in ratio.head(3).items()))
    factor = np.concatenate(factor)
    print(f"daylight / 24-hour mean shortwave (86400 / dayl) over all basin-days: {factor.min():.2f} .. {factor.max():.2f}")
    if monthly is not None:
        print(f"{args.basin} srad 1990-2008, W/m2: January {monthly.loc[1, 'daylight']:.1f} (daylight) / {monthly.loc[1, '24 h']:.1f} (24 h); "
              f"July {monthly.loc[7, 'daylight']:.1f} / {monthly.loc[7, '24 h']:.1f}")
    if args.smap is not None and monthly is not None:
        smap = SiteArrays.wrap(load_site_dataset("hydrodl_smap", data_dir=str(args.smap)))
        lat, lon = topo.loc[args.basin, "gauge_lat"], topo.loc[args.basin, "gauge_lon"]
        coords = smap.static_matrix(["latitude", "longitude"])
        pixel = int(np.argmin((coords[:, 0] - lat) ** 2 + (coords[:, 1] - lon) ** 2))
        series = smap.gather_dynamic([pixel], [0], smap.n_time, smap.column_map("dynamic", ["shortwave_radiation"]))[0, :, 0]
        means = pd.Series(series, index=pd.DatetimeIndex(smap.dates)).groupby(lambda d: d.month).mean()
        print(f"nearest SMAP pixel {smap.site_ids[pixel]} ({coords[pixel, 0]:.2f}, {coords[pixel, 1]:.2f}), NLDAS DSWRF "
              f"{smap.dates[0]}..{smap.dates[-1]}: January {means.loc[1]:.1f}, July {means.loc[7]:.1f} W/m2")


if __name__ == "__main__":
    main()
