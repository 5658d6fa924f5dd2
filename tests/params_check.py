"""Comparison of saved parameter files, shared by the resume tests."""
import mxnet as mx
import numpy as np


def assert_same_parameters(path_a, path_b):
    """Two ``.params`` files hold the same names with bit-identical values (BatchNorm running
    statistics included)."""
    a, b = mx.nd.load(str(path_a)), mx.nd.load(str(path_b))
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key].asnumpy(), b[key].asnumpy(), err_msg=key)
