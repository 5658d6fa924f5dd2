"""Opt-in bfloat16 training (--amp). AMP patches MXNet for a whole process, so each check runs
in a subprocess of its own."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from gluoncv_gan.utils.amp import cpu_has_bfloat16

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(
    not cpu_has_bfloat16(),
    reason='this CPU has no avx512_bf16: --amp would run emulated bfloat16, which is not what '
           'the option is for (the checks run on CPUs that report avx512_bf16)')

CONV_DTYPE = """
import mxnet as mx
from gluoncv_gan.utils.amp import enable_bfloat16
x = mx.nd.ones((1, 3, 8, 8))
w = mx.nd.ones((4, 3, 3, 3))
before = mx.nd.Convolution(x, w, kernel=(3, 3), num_filter=4, no_bias=True)
enable_bfloat16()
after = mx.nd.Convolution(x, w, kernel=(3, 3), num_filter=4, no_bias=True)
print(before.dtype.__name__ if hasattr(before.dtype, '__name__') else str(before.dtype))
print(str(after.dtype))
print(float(after.astype('float32').asnumpy().ravel()[0]))
"""


def test_enable_bfloat16_runs_convolutions_in_bfloat16():
    out = subprocess.run([sys.executable, '-c', CONV_DTYPE], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    before, after, value = out.stdout.strip().splitlines()[-3:]
    assert before == 'float32'
    assert 'bfloat16' in after
    assert float(value) == 27.0  # 3x3x3 ones: exact in bfloat16 too


def test_amp_training_run_finishes_with_finite_losses(tmp_path):
    save = tmp_path / 'run'
    cmd = [sys.executable, '-m', 'gluoncv_gan.train', '--dataset', 'lfw_sample', '--amp',
           '--iterations', '4', '--log-interval', '2', '--eval-interval', '0', '--ngf', '16',
           '--ndf', '16', '--save-dir', str(save)]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    with open(save / 'config.yaml') as f:
        assert yaml.safe_load(f)['amp'] is True
    with open(save / 'history.json') as f:
        rows = json.load(f)
    assert [row['iteration'] for row in rows] == [2, 4]
    for row in rows:
        for key in ('d_loss', 'g_loss'):
            assert np.isfinite(row[key]), row
    assert (save / 'model.params').is_file()
