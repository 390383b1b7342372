"""SiteArrays: zero-copy views of the Arrow buffers."""

import numpy as np
import pytest
from site_data import START, make_data, nan_equal

from stefaland_hf.data.site_arrays import SiteArrays


@pytest.fixture(scope="module")
def data():
    return make_data()


def test_site_views_are_zero_copy(data):
    ds, dyn, tgt, static, lat, lon = data
    a = SiteArrays(ds)
    assert a.n_sites == 6 and a.n_time == 60 and a.dates[0] == START
    assert a.site_ids[2] == "site2" and a.regions[1] == "02"
    np.testing.assert_array_equal(a.static, static)
    for i in range(6):
        v = a.dynamic_site(i)
        assert nan_equal(v, dyn[i]) and nan_equal(a.targets_site(i), tgt[i])
        assert not v.flags.owndata
    # the views point into the Arrow float buffer itself (no copy anywhere)
    chunk = ds.data.column("dynamic").chunk(0).storage
    buf = chunk.values.values.buffers()[1]
    for i in (0, 5):
        addr = a.dynamic_site(i).__array_interface__["data"][0]
        assert buf.address <= addr < buf.address + buf.size
    assert np.shares_memory(a.dynamic_site(0), a.dynamic_site(5).base)
