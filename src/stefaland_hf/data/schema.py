"""The one example-per-site schema every builder writes.

Each example is one site (basin or pixel) with its whole daily record:

- ``site_id`` (string), ``region`` (string: HUC-02 for CAMELS, a climate/region label elsewhere)
- ``latitude``, ``longitude`` (float32, degrees)
- ``dates`` (list of date32, daily and contiguous; every site of a dataset shares one period)
- ``dynamic`` (Array2D [T, F] float32, physical canonical units, NaN = missing)
- ``static`` (list of C float32, physical canonical units, NaN = missing)
- ``targets`` (Array2D [T, K] float32, NaN where unobserved)
- ``gauged`` (bool): the build read a target-observation file for the site (a CAMELS streamflow
  file, a SMAP target year; every SynthLand site). An ungauged site's targets are all NaN by
  construction: it can feed pretraining and prediction, never finetuning or evaluation
  (:func:`stefaland_hf.data.splits.require_gauged`). A gauged site may still have NaN days.
- ``dynamic_variables`` / ``static_variables`` / ``target_variables`` (list of canonical names):
  the names travel with every row so a dataset pushed to the Hub stays self-describing.
"""

from __future__ import annotations

from datasets import Array2D, Features, List, Value


def site_features(n_dynamic: int, n_static: int, n_targets: int, extra_arrays: tuple[str, ...] = ()) -> Features:
    """Explicit features (float32 stays float32). ``extra_arrays`` adds [T, K] arrays such as ``oracle``."""
    spec = {
        "site_id": Value("string"),
        "region": Value("string"),
        "latitude": Value("float32"),
        "longitude": Value("float32"),
        "dates": List(Value("date32")),
        "dynamic": Array2D(shape=(None, n_dynamic), dtype="float32"),
        "static": List(Value("float32"), length=n_static),
        "targets": Array2D(shape=(None, n_targets), dtype="float32"),
        "gauged": Value("bool"),
        "dynamic_variables": List(Value("string")),
        "static_variables": List(Value("string")),
        "target_variables": List(Value("string")),
    }
    for name in extra_arrays:
        spec[name] = Array2D(shape=(None, n_targets), dtype="float32")
    return Features(spec)
