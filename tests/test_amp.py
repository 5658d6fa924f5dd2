"""Opt-in bfloat16 training (--amp): the bfloat16 path chosen from the CPU's flags (faked here),
the operator lists and casts (read from graphs and from the dtypes operators receive), the
error on CPUs without bfloat16; on bfloat16 CPUs, the transposed convolution's gradients and a
short training run; on AMX CPUs, the AMX request and the AMX kernels. Whatever patches MXNet for
a whole process runs in a subprocess of its own or is undone by monkeypatch."""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
import yaml

from gluoncv_gan.model_zoo import get_model
from gluoncv_gan.utils import amp, amx
from gluoncv_gan.utils.amp import bfloat16_op_lists, cpu_has_bfloat16

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AMX_FLAGS = frozenset('fpu sse2 avx2 avx512f avx512_bf16 amx_tile amx_bf16 amx_int8'.split())
ZEN4_FLAGS = frozenset('fpu sse2 avx2 avx512f avx512_bf16'.split())
ZEN3_FLAGS = frozenset('fpu sse2 avx2'.split())

needs_bfloat16 = pytest.mark.skipif(
    not cpu_has_bfloat16(), reason='this CPU has no native bfloat16 (avx512_bf16 or AMX)')
needs_amx = pytest.mark.skipif(
    'amx_bf16' not in amx.cpu_flags(), reason='this CPU has no AMX (amx_bf16)')


class FakeRequest(object):
    def __init__(self, granted=True):
        self.granted, self.calls = granted, 0

    def __call__(self):
        self.calls += 1
        return (True, '') if self.granted else (False, 'Linux refused the AMX permission '
                                                       'request (Invalid argument)')


def test_cpu_flags_come_from_the_cpuinfo_file(tmp_path, monkeypatch):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('processor\t: 0\nflags\t\t: fpu avx512_bf16 amx_tile\n\nprocessor\t: 1\n'
                       'flags\t\t: fpu\n')
    assert amx.cpu_flags(str(cpuinfo)) == {'fpu', 'avx512_bf16', 'amx_tile'}
    monkeypatch.setenv(amx.CPUINFO_VARIABLE, str(cpuinfo))
    assert amx.cpu_info_path() == str(cpuinfo) and 'amx_tile' in amx.cpu_flags()
    assert amx.cpu_flags(str(tmp_path / 'missing')) == frozenset()


@pytest.mark.parametrize('flags, path', [(AMX_FLAGS, 'amx'), (ZEN4_FLAGS, 'avx512_bf16'),
                                         (ZEN3_FLAGS, None),
                                         (ZEN4_FLAGS | {'amx_tile'}, 'avx512_bf16')])
def test_bfloat16_path_of_a_cpu(flags, path):
    assert amx.bfloat16_path(flags) == path
    assert cpu_has_bfloat16(flags) is (path is not None)


def test_amx_cpu_gets_the_request_and_the_amx_isa():
    environ, request = {}, FakeRequest()
    state = amx.setup_amx(environ, AMX_FLAGS, request=request)
    assert request.calls == 1
    assert environ == {'DNNL_MAX_CPU_ISA': 'AVX512_CORE_AMX'}
    assert state['path'] == 'amx' and state['requested'] and state['reason'] == ''
    assert state['set_isa']
    amx.pin_isa(state, environ)  # after one oneDNN primitive, children must not inherit it
    assert environ == {}
    environ = {'DNNL_MAX_CPU_ISA': 'avx512_core_amx'}  # the user's own setting stays
    state = amx.setup_amx(environ, AMX_FLAGS, request=FakeRequest())
    assert state['path'] == 'amx' and not state['set_isa']
    amx.pin_isa(state, environ)
    assert environ == {'DNNL_MAX_CPU_ISA': 'avx512_core_amx'}
    assert amx.describe(state) == 'bfloat16 path: AMX (oneDNN AVX512_CORE_AMX)'


@pytest.mark.parametrize('flags', [ZEN4_FLAGS, ZEN3_FLAGS])
def test_no_request_without_amx(flags):
    environ, request = {}, FakeRequest()
    state = amx.setup_amx(environ, flags, request=request)
    assert request.calls == 0 and environ == {}
    assert state['path'] == amx.bfloat16_path(flags) and state['reason'] == ''


def test_fallback_when_mxnet_came_first():
    environ, request = {}, FakeRequest()
    state = amx.setup_amx(environ, AMX_FLAGS, mxnet_loaded=True, request=request)
    assert request.calls == 0 and environ == {}
    assert state['path'] == 'avx512_bf16'
    line = amx.describe(state)
    assert line.startswith('bfloat16 path: AVX-512 BF16 (no AMX); the CPU has AMX but mxnet '
                           'was imported before gluoncv_gan')
    assert '\n' not in line


def test_fallback_when_linux_refuses_and_no_sigill_setting_is_left():
    environ = {'DNNL_MAX_CPU_ISA': 'AVX512_CORE_AMX'}
    state = amx.setup_amx(environ, AMX_FLAGS, request=FakeRequest(granted=False))
    assert 'DNNL_MAX_CPU_ISA' not in environ  # oneDNN would die with SIGILL on its first tile op
    assert state['path'] == 'avx512_bf16' and 'refused' in state['reason']


def test_opt_out_and_the_users_isa_are_respected():
    request = FakeRequest()
    state = amx.setup_amx({'GLUONCV_GAN_AMX': '0'}, AMX_FLAGS, request=request)
    assert request.calls == 0 and state['path'] == 'avx512_bf16'
    assert 'GLUONCV_GAN_AMX=0' in amx.describe(state)
    environ = {'DNNL_MAX_CPU_ISA': 'AVX512_CORE_BF16'}
    state = amx.setup_amx(environ, AMX_FLAGS, request=request)
    assert environ == {'DNNL_MAX_CPU_ISA': 'AVX512_CORE_BF16'}
    assert state['path'] == 'avx512_bf16' and 'set by the user' in state['reason']


def test_importing_the_package_recorded_a_state():
    state = amx.STATE
    assert state is not None
    assert state['hardware'] == amx.bfloat16_path(amx.cpu_flags())
    if state['set_isa']:  # set for oneDNN's first primitive, then taken out again
        assert 'DNNL_MAX_CPU_ISA' not in os.environ


def _graph_dtypes(sym, data_shape):
    """{(op, node name): output dtype} of every operator node of ``sym``."""
    ops = {node['name']: node['op'] for node in json.loads(sym.tojson())['nodes']}
    internals = sym.get_internals()
    _, types, _ = internals.infer_type(data='float32')
    found = {}
    for name, dtype in zip(internals.list_outputs(), types):
        node = name[:-len('_output')]
        if name.endswith('_output') and ops.get(node, 'null') != 'null':
            found[(ops[node], node)] = 'bfloat16' if 'bfloat16' in str(dtype) else \
                np.dtype(dtype).name
    return found


def test_op_lists_put_deconvolution_and_convolution_in_bfloat16_batchnorm_in_float32():
    from mxnet.contrib import amp as mx_amp
    lists = bfloat16_op_lists()
    net = get_model('dcgan_lfw', ngf=8, ndf=8)
    seen = set()
    for block in (net.generator, net.discriminator):
        converted = mx_amp.convert_symbol(
            block(mx.sym.var('data')), target_dtype='bfloat16', data_names=['data'],
            target_dtype_ops=lists['target_precision_ops'], fp32_ops=lists['fp32_ops'],
            conditional_fp32_ops=lists['conditional_fp32_ops'])
        for (op, name), dtype in _graph_dtypes(converted, None).items():
            seen.add(op)
            if op in ('Convolution', 'Deconvolution'):
                assert dtype == 'bfloat16', name
            if op in ('BatchNorm', 'Reshape', 'reshape'):
                assert dtype == 'float32', name
    assert {'Convolution', 'Deconvolution', 'BatchNorm'} <= seen
    # MXNet's own lists keep Deconvolution in float32 and let BatchNorm follow its input
    from mxnet.contrib.amp.lists import symbol_bf16
    assert 'Deconvolution' in symbol_bf16.FP32_FUNCS
    assert 'Deconvolution' not in lists['fp32_ops'] and 'BatchNorm' in lists['fp32_ops']


def test_enable_bfloat16_casts_convolutions_and_keeps_their_outputs_float32(monkeypatch):
    """Stand-in operators record the dtypes they receive (no bfloat16 hardware needed)."""
    from mxnet.contrib.amp.amp import bfloat16
    received = []

    def stand_in(*args, **kwargs):
        received.append(['bfloat16' if 'bfloat16' in str(a.dtype) else np.dtype(a.dtype).name
                         for a in args if isinstance(a, mx.nd.NDArray)])
        return mx.nd.zeros((2, 4, 3, 3), dtype=bfloat16)
    for name in ('Convolution', 'FullyConnected', 'Deconvolution'):
        monkeypatch.setattr(mx.nd, name, stand_in)
        monkeypatch.setattr(mx.nd.op, name, stand_in)
    state = {'path': 'amx', 'hardware': 'amx', 'isa': 'AVX512_CORE_AMX', 'reason': '',
             'requested': True}
    assert amp.enable_bfloat16(state=state) is state
    x, w = mx.nd.ones((2, 3, 5, 5)), mx.nd.ones((4, 3, 3, 3))
    out = mx.nd.Convolution(x, w, kernel=(3, 3), num_filter=4, no_bias=True)
    assert out.dtype == np.float32
    assert received == [['bfloat16', 'bfloat16']]
    # a transposed convolution with a bias (none in this project) stays float32
    mx.nd.Deconvolution(x, mx.nd.ones((3, 4, 3, 3)), mx.nd.zeros((4,)), kernel=(3, 3),
                        num_filter=4)
    assert received[-1] == ['float32'] * 3
    assert getattr(mx.nd.Deconvolution, 'bfloat16_training', False)


def test_bf16_deconv_variable_keeps_transposed_convolutions_float32(monkeypatch, caplog):
    def stand_in(*args, **kwargs):
        return args[0]
    for name in ('Convolution', 'FullyConnected', 'Deconvolution'):
        monkeypatch.setattr(mx.nd, name, stand_in)
        monkeypatch.setattr(mx.nd.op, name, stand_in)
    monkeypatch.setenv('GLUONCV_GAN_BF16_DECONV', '0')
    state = {'path': 'amx', 'hardware': 'amx', 'isa': 'AVX512_CORE_AMX', 'reason': '',
             'requested': True}
    with caplog.at_level('INFO'):
        amp.enable_bfloat16(state=state)
    assert mx.nd.Deconvolution is stand_in
    assert getattr(mx.nd.Convolution, 'bfloat16_training', False)
    lines = [r.getMessage() for r in caplog.records if 'bfloat16 path' in r.getMessage()]
    assert lines == ['bfloat16 path: AMX (oneDNN AVX512_CORE_AMX); bfloat16: Convolution, '
                     'FullyConnected; float32: BatchNorm, Deconvolution, losses, weights']


AMP_WITHOUT_BF16 = [sys.executable, '-m', 'gluoncv_gan.train', '--dataset', 'lfw_sample', '--amp',
                    '--iterations', '1', '--eval-interval', '0', '--ngf', '8', '--ndf', '8']


def test_amp_on_a_cpu_without_bfloat16_is_one_line_and_exit_2(tmp_path):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n')
    env = dict(os.environ, GLUONCV_GAN_CPUINFO=str(cpuinfo))
    run = subprocess.run(AMP_WITHOUT_BF16 + ['--save-dir', str(tmp_path / 'run')], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr[-2000:]
    errors = [line for line in run.stderr.splitlines() if line.startswith('error:')]
    assert errors == [run.stderr.strip().splitlines()[-1]]
    assert errors[0].startswith('error: --amp needs a CPU with bfloat16 instructions')
    assert 'train without --amp' in errors[0] and str(cpuinfo) in errors[0]
    assert 'Traceback' not in run.stderr


def test_benchmark_amp_on_a_cpu_without_bfloat16_is_one_line_and_exit_2(tmp_path):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('processor\t: 0\nflags\t\t: fpu sse2 avx2\n')
    env = dict(os.environ, GLUONCV_GAN_CPUINFO=str(cpuinfo))
    run = subprocess.run([sys.executable, '-m', 'gluoncv_gan.benchmark', '--amp'], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        'error: --amp needs a CPU with bfloat16 instructions (avx512_bf16 or AMX in the flags of '
        '%s) and this one has neither: run the benchmark without --amp' % cpuinfo]


@needs_bfloat16
def test_transposed_convolution_matches_float32_deconvolution():
    """Forward, input gradient and weight gradient of the bfloat16 transposed convolution
    agree with MXNet's float32 Deconvolution to bfloat16 precision."""
    code = """
import numpy as np, mxnet as mx
from mxnet import autograd
from mxnet.contrib.amp.amp import bfloat16
from gluoncv_gan.utils.amp import transposed_convolution
bf16 = transposed_convolution(mx.nd.Deconvolution, mx.nd.Convolution, bfloat16)
mx.random.seed(0)
x = mx.nd.random.normal(shape=(8, 32, 8, 8))
w = mx.nd.random.normal(shape=(32, 16, 4, 4)) * 0.05
head = mx.nd.random.normal(shape=(8, 16, 16, 16))
kw = dict(kernel=(4, 4), stride=(2, 2), pad=(1, 1), num_filter=16, no_bias=True, adj=(0, 0))
found = []
for op in (mx.nd.Deconvolution, bf16):
    x.attach_grad(); w.attach_grad()
    with autograd.record():
        y = op(x, w, **kw)
    y.backward(head)
    found.append([y.asnumpy(), x.grad.asnumpy().copy(), w.grad.asnumpy().copy(), str(y.dtype)])
print([float(np.abs(a - b).max() / np.abs(a).max()) for a, b in zip(found[0][:3], found[1][:3])])
print(found[1][3])
"""
    run = subprocess.run([sys.executable, '-c', 'import gluoncv_gan\n' + code], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    errors, dtype = run.stdout.strip().splitlines()[-2:]
    errors = json.loads(errors)
    assert dtype == "<class 'numpy.float32'>"
    assert len(errors) == 3 and all(0 < e < 2e-2 for e in errors), errors


@needs_bfloat16
def test_amp_training_run_finishes_with_finite_losses(tmp_path):
    save = tmp_path / 'run'
    cmd = [sys.executable, '-m', 'gluoncv_gan.train', '--dataset', 'lfw_sample', '--amp',
           '--iterations', '4', '--log-interval', '2', '--eval-interval', '0', '--ngf', '16',
           '--ndf', '16', '--save-dir', str(save)]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    paths = [line for line in (out.stdout + out.stderr).splitlines()
             if 'bfloat16 path: ' in line]
    assert len(paths) == 1, paths
    with open(save / 'config.yaml') as f:
        assert yaml.safe_load(f)['amp'] is True
    with open(save / 'history.json') as f:
        rows = json.load(f)
    assert [row['iteration'] for row in rows] == [2, 4]
    for row in rows:
        for key in ('d_loss', 'g_loss'):
            assert np.isfinite(row[key]), row
    assert (save / 'model.params').is_file()


@needs_amx
def test_the_amx_request_succeeds_in_a_fresh_process():
    code = 'from gluoncv_gan.utils.amx import request_amx; print(request_amx()[0])'
    run = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == 'True'


@needs_amx
def test_bfloat16_convolutions_run_on_amx_kernels():
    from gluoncv_gan.utils.onednn import probe_kernels
    env = {k: v for k, v in os.environ.items() if k not in ('DNNL_MAX_CPU_ISA', 'GLUONCV_GAN_AMX')}
    result = probe_kernels(bfloat16=True, env=env)
    assert result['returncode'] == 0, result['error']
    assert 'AMX' in result['isa']
    bf16 = {(k[0], k[2]): k[1] for k in result['kernels'] if k[3] == 'bf16'}
    assert 'avx512_core_amx' in bf16[('convolution', 'forward_training')]
    assert 'avx512_core_amx' in bf16[('deconvolution', 'forward_training')]


def test_mxnet_imported_first_falls_back_with_the_reason(tmp_path):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('processor\t: 0\nflags\t\t: %s\n' % ' '.join(sorted(AMX_FLAGS)))
    code = ('import mxnet\nimport gluoncv_gan\nfrom gluoncv_gan.utils import amx\n'
            'print(amx.STATE["requested"])\nprint(amx.describe(amx.STATE))')
    env = {k: v for k, v in os.environ.items() if k != 'DNNL_MAX_CPU_ISA'}
    env['GLUONCV_GAN_CPUINFO'] = str(cpuinfo)
    run = subprocess.run([sys.executable, '-c', code], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    requested, line = run.stdout.strip().splitlines()[-2:]
    assert requested == 'False'
    assert line.startswith('bfloat16 path: AVX-512 BF16 (no AMX); the CPU has AMX but mxnet was '
                           'imported before gluoncv_gan')


@needs_amx
def test_the_amx_setup_leaves_the_float32_kernels_unchanged():
    from gluoncv_gan.utils.onednn import probe_kernels
    env = {k: v for k, v in os.environ.items() if k != 'DNNL_MAX_CPU_ISA'}
    with_amx = probe_kernels(bfloat16=False, env=env)
    without = probe_kernels(bfloat16=False, env=dict(env, GLUONCV_GAN_AMX='0'))
    assert with_amx['returncode'] == without['returncode'] == 0
    assert 'AMX' in with_amx['isa'] and 'AMX' not in without['isa']
    assert with_amx['kernels'] == without['kernels'] and with_amx['kernels']
    assert all(k[3] == 'f32' for k in with_amx['kernels'])


@needs_amx
def test_a_child_process_does_not_inherit_an_isa_it_may_not_use(tmp_path):
    """oneDNN reads DNNL_MAX_CPU_ISA at its first primitive; a child lacks the permission (exec
    clears it), so a bfloat16 convolution in a plain MXNet child would die with SIGILL if the
    variable had stayed in the package's environment."""
    child = ('import mxnet as mx\nfrom mxnet.contrib.amp.amp import bfloat16\n'
             'x = mx.nd.amp_cast(mx.nd.ones((8, 64, 16, 16)), dtype=bfloat16)\n'
             'w = mx.nd.amp_cast(mx.nd.ones((128, 64, 4, 4)), dtype=bfloat16)\n'
             'mx.nd.Convolution(x, w, kernel=(4, 4), num_filter=128, no_bias=True).wait_to_read()'
             '\nprint("ok")')
    script = tmp_path / 'child.py'
    script.write_text(child)
    parent = ('import subprocess, sys\nimport gluoncv_gan\n'
              'print(subprocess.run([sys.executable, %r], timeout=120).returncode)' % str(script))
    env = {k: v for k, v in os.environ.items() if k != 'DNNL_MAX_CPU_ISA'}
    run = subprocess.run([sys.executable, '-c', parent], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == '0'
