"""Which oneDNN kernels run: a short training step of one convolution and one transposed
convolution in a child process with ``DNNL_VERBOSE=1``, parsed.

MXNet 1.9.1 exports no oneDNN function to ask, and the verbose switch is read when the library
loads, hence the child process (it imports gluoncv_gan first, so it gets the same AMX setup as
the caller's commands).
"""
import os
import subprocess
import sys

__all__ = ['PROBE', 'parse_verbose', 'probe_kernels']

PROBE = """
import gluoncv_gan
import mxnet as mx
from mxnet import autograd
from mxnet.gluon import nn
from gluoncv_gan.utils.amp import enable_bfloat16
if %(bfloat16)r:
    enable_bfloat16()
conv = nn.Conv2D(128, 4, 2, 1, use_bias=False, in_channels=64)
deconv = nn.Conv2DTranspose(64, 4, 2, 1, use_bias=False, in_channels=128)
for net in (conv, deconv):
    net.initialize()
x = mx.nd.random.uniform(shape=(%(batch)d, 64, 16, 16))
with autograd.record():
    y = deconv(conv(x))
y.backward()
mx.nd.waitall()
"""


def parse_verbose(text):
    """The ISA line and the convolution kernels of ``DNNL_VERBOSE=1`` output.

    Returns
    -------
    dict
        ``isa`` (oneDNN's description of the instruction set it uses, or None) and ``kernels``:
        a sorted list of ``[primitive, implementation, propagation, data type]`` of every
        (de)convolution that ran, once each.
    """
    isa, kernels = None, set()
    for line in text.splitlines():
        fields = line.strip().split(',')
        if len(fields) > 3 and fields[:2] == ['dnnl_verbose', 'info'] \
                and fields[3].startswith('isa:'):
            isa = fields[3][4:]
        elif len(fields) > 6 and fields[:2] == ['dnnl_verbose', 'exec'] \
                and fields[3] in ('convolution', 'deconvolution'):
            dtype = 'bf16' if 'src_bf16' in fields[6] else 'f32'
            kernels.add((fields[3], fields[4], fields[5], dtype))
    return {'isa': isa, 'kernels': [list(k) for k in sorted(kernels)]}


def probe_kernels(bfloat16=True, batch=8, env=None, timeout=300):
    """Run :data:`PROBE` in a child Python with ``DNNL_VERBOSE=1``; see :func:`parse_verbose`.

    Parameters
    ----------
    bfloat16 : bool
        Turn on ``--amp``'s bfloat16 first (the child fails on a CPU without bfloat16).
    batch : int
        Images of the step.
    env : dict or None
        The child's environment (default: this process's).
    timeout : float
        Seconds to wait for the child.

    Returns
    -------
    dict
        :func:`parse_verbose`'s, plus ``returncode`` and ``error`` (the child's last stderr
        line when it failed, else '').
    """
    env = dict(os.environ if env is None else env, DNNL_VERBOSE='1')
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env['PYTHONPATH'] = os.pathsep.join(
        [package_parent] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
    run = subprocess.run([sys.executable, '-c', PROBE % {'bfloat16': bool(bfloat16),
                                                         'batch': int(batch)}],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=timeout)
    result = parse_verbose(run.stdout)
    lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
    result.update(returncode=run.returncode,
                  error=lines[-1] if run.returncode != 0 and lines else '')
    return result
