"""A vectorized HBV-like conceptual hydrology model and Hargreaves PET (SynthLand's process model).

Everything works on numpy arrays shaped ``[sites, days]`` (inputs) and ``[sites]`` (parameters).
The only Python loop is over days, where the model carries state.

Routines for one day (Bergström 1995; HBV-light, Seibert & Vis 2012; the differentiable HBV of
Feng et al. 2022 uses the same order), states in mm:

1. **Snow.** ``P`` falls as snow (scaled by ``SFCF``) when ``T < TT``, else as rain. Melt
   ``CFMAX·(T − TT)`` (limited by the pack) moves to the liquid water ``WC`` in the pack;
   refreezing ``CFR·CFMAX·(TT − T)`` (limited by ``WC``) moves it back. Liquid water above
   ``CWH·SP`` leaves the pack and, with the rain, goes to the soil.
2. **Soil moisture.** Recharge ``R = I·(SM/FC)^BETA``; the rest of the input raises ``SM``, whose
   excess over ``FC`` also becomes recharge. Actual evapotranspiration
   ``Ea = min(PET·min(SM/(LP·FC), 1), SM)``.
3. **Response.** Recharge enters the upper zone ``SUZ``; percolation ``min(PERC, SUZ)`` feeds the
   lower zone ``SLZ``. ``Q0 = K0·max(SUZ − UZL, 0)``, ``Q1 = K1·SUZ``, ``Q2 = K2·SLZ``.
4. **Routing.** ``Q0 + Q1 + Q2`` is convolved with a triangular unit hydrograph of base ``MAXBAS``
   days (real-valued; weights are the triangle's area over each whole day).

Spin-up: the first year of the inputs (``warmup_days``) is run once from empty stores; the lower
zone is then reset to the quasi-equilibrium ``mean percolation / K2`` of that pass and the year is
run again; the states at its end start the simulation proper. The water balance closes exactly:
``Σ(rain + SFCF·snow) = ΣQgen + ΣEa + ΔS`` with ``S = SP + WC + SM + SUZ + SLZ``.

PET: Hargreaves (1985), ``PET = 0.0023·Ra·(Tmean + 17.8)·sqrt(Tmax − Tmin)`` with ``Ra`` the
extraterrestrial radiation in mm/day of evaporation equivalent (FAO-56 eqs. 21–25, ×0.408).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

#: HBV parameters in the order used by :func:`run_hbv` and SynthLand's ``hbv_parameters`` array,
#: with the HBV-light calibration ranges (Seibert & Vis 2012).
HBV_PARAMETER_RANGES: dict[str, tuple[float, float]] = {
    "TT": (-2.5, 2.5),
    "CFMAX": (0.5, 10.0),
    "SFCF": (0.4, 1.0),
    "CFR": (0.0, 0.1),
    "CWH": (0.0, 0.2),
    "FC": (50.0, 500.0),
    "LP": (0.3, 1.0),
    "BETA": (1.0, 6.0),
    "PERC": (0.0, 6.0),
    "UZL": (0.0, 100.0),
    "K0": (0.05, 0.99),
    "K1": (0.01, 0.5),
    "K2": (0.001, 0.2),
    "MAXBAS": (1.0, 7.0),
}
HBV_PARAMETERS: list[str] = list(HBV_PARAMETER_RANGES)

SOLAR_CONSTANT = 0.0820  # MJ m-2 min-1 (FAO-56)
MJ_TO_MM = 0.408  # MJ m-2 day-1 -> mm/day of evaporation equivalent (FAO-56 eq. 20)


def day_of_year(dates: np.ndarray) -> np.ndarray:
    """Day of year (1..366) of ``datetime64`` dates."""
    dates = np.asarray(dates, dtype="datetime64[D]")
    return (dates - dates.astype("datetime64[Y]")).astype(np.int64) + 1


def extraterrestrial_radiation(latitude_deg: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """Daily extraterrestrial radiation Ra in MJ m-2 day-1 (FAO-56 eqs. 21–25).

    ``latitude_deg`` [S] and ``doy`` [T] broadcast to [S, T] (pass matching shapes otherwise).
    """
    lat = np.deg2rad(np.asarray(latitude_deg, dtype=np.float64))
    doy = np.asarray(doy, dtype=np.float64)
    if lat.ndim == 1 and doy.ndim == 1:
        lat, doy = lat[:, None], doy[None, :]
    dr = 1.0 + 0.033 * np.cos(2.0 * np.pi / 365.0 * doy)  # inverse relative Earth–Sun distance
    decl = 0.409 * np.sin(2.0 * np.pi / 365.0 * doy - 1.39)  # solar declination
    ws = np.arccos(np.clip(-np.tan(lat) * np.tan(decl), -1.0, 1.0))  # sunset hour angle
    ra = (24.0 * 60.0 / np.pi) * SOLAR_CONSTANT * dr * (
        ws * np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.sin(ws)
    )
    return np.maximum(ra, 0.0)


def hargreaves_pet(tmax: np.ndarray, tmin: np.ndarray, ra_mj: np.ndarray) -> np.ndarray:
    """Hargreaves PET in mm/day from Tmax/Tmin (degC) and Ra (MJ m-2 day-1); never negative."""
    tmean = 0.5 * (tmax + tmin)
    dtr = np.maximum(tmax - tmin, 0.0)
    pet = 0.0023 * (MJ_TO_MM * ra_mj) * (tmean + 17.8) * np.sqrt(dtr)
    return np.maximum(pet, 0.0)


def triangular_weights(maxbas: np.ndarray, max_len: int = 7) -> np.ndarray:
    """Unit-hydrograph weights [S, max_len]: area of a triangle of base ``maxbas`` days over each day."""
    maxbas = np.clip(np.asarray(maxbas, dtype=np.float64), 1.0, float(max_len))[:, None]

    def cum_area(x):  # area of the unit-area triangle on [0, maxbas] left of x
        x = np.clip(x, 0.0, maxbas)
        half = maxbas / 2.0
        left = 2.0 * x**2 / maxbas**2
        right = 1.0 - 2.0 * (maxbas - x) ** 2 / maxbas**2
        return np.where(x <= half, left, right)

    edges = np.arange(max_len + 1, dtype=np.float64)[None, :]
    w = np.diff(cum_area(edges), axis=1)
    return w / w.sum(axis=1, keepdims=True)


def route(qgen: np.ndarray, maxbas: np.ndarray, max_len: int = 7) -> np.ndarray:
    """Convolve [S, T] runoff with the triangular unit hydrograph (start padded with the first day)."""
    w = triangular_weights(maxbas, max_len)
    out = np.zeros_like(qgen)
    n_t = qgen.shape[1]
    for k in range(max_len):  # loop over lags (at most 7), vectorized over sites and days
        if k == 0:
            out += w[:, :1] * qgen
        else:
            shifted = np.concatenate([np.repeat(qgen[:, :1], min(k, n_t), axis=1), qgen[:, : n_t - k]], axis=1)
            out += w[:, k : k + 1] * shifted
    return out


def _as_params(params: Mapping[str, np.ndarray], n_sites: int) -> dict[str, np.ndarray]:
    missing = [p for p in HBV_PARAMETERS if p not in params]
    if missing:
        raise ValueError(f"run_hbv: missing parameters {missing}")
    out = {}
    for name, (lo, hi) in HBV_PARAMETER_RANGES.items():
        v = np.broadcast_to(np.asarray(params[name], dtype=np.float64), (n_sites,)).copy()
        out[name] = np.clip(v, lo, hi)
    return out


def _simulate(precip, temp, pet, p, states, record: bool, record_states: bool):
    """Run the day loop. ``states``: dict of [S] arrays updated in place. Returns recorded arrays."""
    n_sites, n_days = precip.shape
    tt, cfmax, sfcf, cfr, cwh = p["TT"], p["CFMAX"], p["SFCF"], p["CFR"], p["CWH"]
    fc, lp, beta, perc_max, uzl = p["FC"], p["LP"], p["BETA"], p["PERC"], p["UZL"]
    k0, k1, k2 = p["K0"], p["K1"], p["K2"]
    lp_fc = lp * fc
    sp, wc, sm, suz, slz = (states[k] for k in ("SP", "WC", "SM", "SUZ", "SLZ"))
    rec = {}
    names = ["qgen", "et", "sm", "sp"] if record else []
    if record_states:
        names += ["wc", "suz", "slz", "peff"]
    for name in names:
        rec[name] = np.empty((n_sites, n_days), dtype=np.float64)
    perc_total = np.zeros(n_sites)
    for t in range(n_days):
        prcp, tmp = precip[:, t], temp[:, t]
        # snow routine
        cold = tmp < tt
        rain = np.where(cold, 0.0, prcp)
        snow = np.where(cold, prcp * sfcf, 0.0)
        sp = sp + snow
        melt = np.minimum(cfmax * np.maximum(tmp - tt, 0.0), sp)
        sp = sp - melt
        wc = wc + melt
        refreeze = np.minimum(cfr * cfmax * np.maximum(tt - tmp, 0.0), wc)
        sp = sp + refreeze
        wc = wc - refreeze
        tosoil = np.maximum(wc - cwh * sp, 0.0)
        wc = wc - tosoil
        # soil routine
        inflow = rain + tosoil
        recharge = inflow * np.minimum(sm / fc, 1.0) ** beta
        sm = sm + inflow - recharge
        excess = np.maximum(sm - fc, 0.0)
        sm = sm - excess
        et = np.minimum(pet[:, t] * np.minimum(sm / lp_fc, 1.0), sm)
        sm = sm - et
        # response routine
        suz = suz + recharge + excess
        perc = np.minimum(perc_max, suz)
        suz = suz - perc
        q0 = k0 * np.maximum(suz - uzl, 0.0)
        suz = suz - q0
        q1 = k1 * suz
        suz = suz - q1
        slz = slz + perc
        q2 = k2 * slz
        slz = slz - q2
        perc_total += perc
        if record:
            rec["qgen"][:, t] = q0 + q1 + q2
            rec["et"][:, t] = et
            rec["sm"][:, t] = sm
            rec["sp"][:, t] = sp
        if record_states:
            rec["wc"][:, t] = wc
            rec["suz"][:, t] = suz
            rec["slz"][:, t] = slz
            rec["peff"][:, t] = rain + snow
    states.update(SP=sp, WC=wc, SM=sm, SUZ=suz, SLZ=slz)
    return rec, perc_total / max(n_days, 1)


def run_hbv(
    precipitation: np.ndarray,
    temperature: np.ndarray,
    pet: np.ndarray,
    params: Mapping[str, np.ndarray],
    warmup_days: int = 365,
    return_states: bool = False,
) -> dict[str, np.ndarray]:
    """Run the HBV-like model for all sites at once.

    Args:
        precipitation, temperature, pet: [S, T] arrays (mm/day, degC daily mean, mm/day).
        params: mapping of every name in :data:`HBV_PARAMETERS` to [S] (or scalar) values; values are
            clipped to :data:`HBV_PARAMETER_RANGES`.
        warmup_days: length of the spin-up period taken from the start of the inputs (see module doc).
        return_states: also return ``liquid_water``, ``upper_zone``, ``lower_zone``,
            ``effective_precipitation`` [S, T] and ``initial_storage`` [S] (for water-balance checks).

    Returns:
        dict with ``streamflow`` (routed, mm/day), ``generated_runoff`` (before routing),
        ``actual_et`` (mm/day), ``soil_storage`` (SM, mm), ``snowpack`` (SP, mm), all [S, T] float64.
    """
    precip = np.ascontiguousarray(np.maximum(np.asarray(precipitation, dtype=np.float64), 0.0))
    temp = np.ascontiguousarray(np.asarray(temperature, dtype=np.float64))
    pet = np.ascontiguousarray(np.maximum(np.asarray(pet, dtype=np.float64), 0.0))
    if not (precip.shape == temp.shape == pet.shape) or precip.ndim != 2:
        raise ValueError(
            f"run_hbv: precipitation, temperature and pet must share one [sites, days] shape, got "
            f"{precip.shape}, {temp.shape}, {pet.shape}"
        )
    n_sites, n_days = precip.shape
    p = _as_params(params, n_sites)
    zeros = np.zeros(n_sites)
    states = dict(SP=zeros.copy(), WC=zeros.copy(), SM=0.5 * p["FC"], SUZ=zeros.copy(), SLZ=zeros.copy())
    w = int(min(max(warmup_days, 0), n_days))
    if w > 0:
        sl = (slice(None), slice(0, w))
        _, mean_perc = _simulate(precip[sl], temp[sl], pet[sl], p, states, False, False)
        states["SLZ"] = mean_perc / p["K2"]
        _simulate(precip[sl], temp[sl], pet[sl], p, states, False, False)
    initial = sum(states[k] for k in ("SP", "WC", "SM", "SUZ", "SLZ")).copy()
    rec, _ = _simulate(precip, temp, pet, p, states, True, return_states)
    out = {
        "streamflow": route(rec["qgen"], p["MAXBAS"]),
        "generated_runoff": rec["qgen"],
        "actual_et": rec["et"],
        "soil_storage": rec["sm"],
        "snowpack": rec["sp"],
    }
    if return_states:
        out.update(
            liquid_water=rec["wc"],
            upper_zone=rec["suz"],
            lower_zone=rec["slz"],
            effective_precipitation=rec["peff"],
            initial_storage=initial,
        )
    return out
