"""The tutorial reference step computes what the project's step computes; the benchmark CLI runs."""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from gluoncv_gan import benchmark
from gluoncv_gan.benchmark import flops, reference, run
from gluoncv_gan.data import LFWSample
from gluoncv_gan.data.loader import CachedBatchLoader
from gluoncv_gan.estimator import GANEstimator, latent_batch
from gluoncv_gan.loss import VanillaGANLoss
from gluoncv_gan.model_zoo import get_model
from gluoncv_gan.utils.amp import cpu_has_bfloat16

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NZ, NGF, NDF, BATCH, SEED = 16, 8, 8, 8, 5


def learnable(block):
    return [p for p in block.collect_params().values() if p.grad_req != 'null']


def running_stats(block):
    return [p.data().asnumpy() for p in block.collect_params().values() if p.grad_req == 'null']


def record_gradients(trainer, params, log):
    """Make ``trainer.step`` record the gradients it is about to apply."""
    original = trainer.step

    def step(*args, **kwargs):
        log.append([p.grad().asnumpy().copy() for p in params])
        return original(*args, **kwargs)
    trainer.step = step


def assert_close_lists(actual, expected, what):
    assert len(actual) == len(expected) > 0
    for i, (a, e) in enumerate(zip(actual, expected)):
        scale = max(np.abs(e).max(), 1e-12)
        assert np.abs(a - e).max() <= 1e-4 * scale + 1e-7, '%s #%d differs' % (what, i)


def test_project_step_matches_the_tutorial_step():
    """Same parameters, real batch and latent batch: same losses, gradients and updates.

    Gradients are compared as each trainer is about to step (D's after the discriminator step,
    G's after the generator step), and all parameters after each of two whole iterations.
    """
    net = get_model('dcgan_lfw', nz=NZ, ngf=NGF, ndf=NDF)
    net.generator.hybridize(static_alloc=True, static_shape=True)  # as the training script
    net.discriminator.hybridize(static_alloc=True, static_shape=True)
    opts = {'learning_rate': 2e-4, 'beta1': 0.5}
    trainer_g = mx.gluon.Trainer(net.generator.collect_params(), 'adam', dict(opts))
    trainer_d = mx.gluon.Trainer(net.discriminator.collect_params(), 'adam', dict(opts))
    est = GANEstimator(net, VanillaGANLoss(), trainer_g, trainer_d, context=mx.cpu(), seed=SEED)

    net_g, net_d = reference.build_generator(NZ, NGF), reference.build_discriminator(NDF)
    net_g.initialize(mx.init.Normal(0.02))
    net_d.initialize(mx.init.Normal(0.02))
    reference.copy_parameters(net.generator, net_g)
    reference.copy_parameters(net.discriminator, net_d)
    tutorial = reference.TutorialTrainer(nz=NZ, netG=net_g, netD=net_d)

    grads = {key: [] for key in ('pg', 'pd', 'rg', 'rd')}
    record_gradients(trainer_g, learnable(net.generator), grads['pg'])
    record_gradients(trainer_d, learnable(net.discriminator), grads['pd'])
    record_gradients(tutorial.trainerG, learnable(net_g), grads['rg'])
    record_gradients(tutorial.trainerD, learnable(net_d), grads['rd'])

    loader = CachedBatchLoader(LFWSample(), BATCH, seed=0)
    for iteration in range(2):
        batch = loader.batch(0, iteration)
        _, _, out, _ = est.batch_processor.fit_batch(est, batch)
        z = latent_batch(SEED, iteration, BATCH, NZ)  # the latent batch the project drew
        err_d, err_g = tutorial.step(batch[0], latent_z=z)
        assert_close_lists([out.d_loss[0].asnumpy()], [err_d.asnumpy()], 'D loss')
        assert_close_lists([out.g_loss[0].asnumpy()], [err_g.asnumpy()], 'G loss')
        assert_close_lists(grads['pd'][iteration], grads['rd'][iteration], 'D gradient')
        assert_close_lists(grads['pg'][iteration], grads['rg'][iteration], 'G gradient')
        assert all(np.abs(g).max() > 0 for g in grads['pd'][iteration] + grads['pg'][iteration])
        # BatchNorm running statistics agree too, the generator's included: MXNet 1.9.1
        # updates them in the backward pass, not the forward pass, and the tutorial's first
        # generator pass (under fake.detach()) is never backpropagated, so in both steps G's
        # statistics take one update per iteration and D's three.
        for mine, theirs in ((net.generator, net_g), (net.discriminator, net_d)):
            assert_close_lists(running_stats(mine), running_stats(theirs), 'running statistic')
            assert all(np.abs(m).max() > 0 for m in running_stats(mine)[0::2])
        for mine, theirs in ((net.generator, net_g), (net.discriminator, net_d)):
            assert_close_lists([p.data().asnumpy() for p in learnable(mine)],
                               [p.data().asnumpy() for p in learnable(theirs)],
                               'updated parameter')


def test_flop_count_of_the_tutorial_networks():
    flops = benchmark.flops_per_image()
    g = [100 * 512 * 16, 16 * 512 * 256 * 16, 64 * 256 * 128 * 16, 256 * 128 * 64 * 16,
         1024 * 64 * 3 * 16]
    d = [1024 * 64 * 3 * 16, 256 * 128 * 64 * 16, 64 * 256 * 128 * 16, 16 * 512 * 256 * 16,
         512 * 16]
    assert [m for _, m in flops['layers']['generator']] == g
    assert [m for _, m in flops['layers']['discriminator']] == d
    fg, fd = 2 * sum(g), 2 * sum(d)
    assert flops['project'] == 3 * fg + 9 * fd
    assert flops['reference'] == 4 * fg + 9 * fd
    # a generator step that skips D's weight gradients saves one D forward's worth
    assert benchmark.flops_per_image(input_grad_only=True)['project'] == 3 * fg + 8 * fd


def test_benchmark_cli_smoke(tmp_path):
    out = tmp_path / 'bench.json'
    cmd = [sys.executable, '-m', 'gluoncv_gan.benchmark', '--batch-size', '8', '--iters', '1',
           '--repeats', '1', '--warmup', '0', '--threads', '2', '--sample-batch-size', '8',
           '--sample-batches', '1', '--loader-batches', '2', '--jpeg-images', '16',
           '--gemm-size', '256', '--json', str(out)]
    if cpu_has_bfloat16():
        cmd.append('--amp')
    run = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=300)
    assert run.returncode == 0, run.stdout
    assert 'samples/s' in run.stdout
    result = json.loads(out.read_text())
    # a fresh MXNET_HOME has no prepared LFW: the bundled sample is used, with a note
    assert result['settings']['dataset'] == 'lfw_sample'
    assert any('lfw_sample' in note for note in result['notes'])
    for key in ('train_samples_per_s', 'reference_samples_per_s',
                'reference_tuned_samples_per_s', 'ratio', 'ratio_tuned', 'sample_images_per_s',
                'loader_images_per_s', 'loader_jpeg_images_per_s'):
        assert result[key] > 0, key
    names = ('project', 'reference_default', 'reference_tuned')
    for name in names:
        assert result['peak_rss_mb'][name] > 0
        assert result['gflops'][name] > 0
        assert len(result['times'][name]) == 1 and result['times'][name][0] > 0
    assert result['flops_per_image']['reference'] > result['flops_per_image']['project'] > 0
    workers = result['threads']['workers']
    assert workers['reference_default']['OMP_NUM_THREADS'] is None
    assert workers['reference_default']['gluoncv_gan_imported'] is False
    assert workers['reference_default']['pre_import']['mxnet_already_imported'] is False
    assert workers['project']['OMP_NUM_THREADS'] == '2'
    assert workers['reference_tuned']['OMP_NUM_THREADS'] == '2'
    assert result['threads']['cpu_count'] >= 1
    assert result['mxnet_features'] and all(isinstance(f, str) for f in result['mxnet_features'])
    assert result['settings']['batch_size'] == 8
    assert result['gemm_gflops'] > 0 and result['settings']['gemm_size'] == 256
    assert 'measured fp32 GEMM' in run.stdout
    assert result['extras']['gemm']['dtype'] == 'float32'
    assert 'peak' not in result and 'peak (estimate)' not in run.stdout
    if cpu_has_bfloat16():
        assert result['amp_samples_per_s'] > 0 and result['ratio_amp'] > 0
        assert len(result['times']['project_amp']) == 1
        assert result['gemm_bf16_gflops'] > 0
        assert result['onednn']['returncode'] == 0 and result['onednn']['isa']
        assert result['bfloat16_path']['line'].startswith('bfloat16 path: ')


def test_measure_gemm_counts_two_flops_per_multiply_add(monkeypatch):
    """With a clock that the test drives, the products take 0.5 s, 0.25 s and 0.4 s: the best
    of the three, 64**3 multiply-adds in 0.25 s, is 2 * 64**3 / 0.25 FLOP/s."""
    ticks = iter([0.0, 0.5, 10.0, 10.25, 20.0, 20.4])
    monkeypatch.setattr(flops.time, 'perf_counter', lambda: next(ticks))
    result = benchmark.measure_gemm(3, size=64)
    assert result['size'] == 64 and result['seconds'] == 0.25
    assert result['gflops'] == pytest.approx(2 * 64 ** 3 / 0.25 / 1e9)
    assert next(ticks, None) is None  # three timed products, and only those


# Elapsed seconds each fake worker reports: its warm-up run first (not counted), then three
# timed runs whose median differs from their mean.
FAKE_ELAPSED = {'A': [99.0, 0.5, 0.4, 2.0], 'B': [99.0, 4.0, 1.0, 2.0],
                'C': [99.0, 1.0, 1.0, 1.0], 'D': [99.0, 0.25, 0.25, 0.1]}
FAKE_EXTRAS = {'sample': {'elapsed': 2.0, 'images': 512}, 'loader': {'elapsed': 0.5, 'images': 100},
               'jpeg': {'elapsed': 4.0, 'images': 16, 'num_workers': 2},
               'gemm': {'gflops': 100.0, 'seconds': 0.1, 'size': 256},
               'gemm_bf16': {'gflops': 400.0, 'seconds': 0.025, 'size': 256}}


class FakeWorker(object):
    """Stands in for a worker process, answering each request with the figures above."""

    def __init__(self, key, command, env, cwd, log_path):
        self.key, self.elapsed = key, list(FAKE_ELAPSED[key])

    def read(self):
        reference = self.key in 'BC'
        omp = None if self.key == 'B' else '2'
        return {'status': 'ready', 'input_grad_only': True, 'log_interval': 10,
                'sample_interval': 100,
                'pre_import': {'gluoncv_gan_imported': not reference,
                               'mxnet_already_imported': False, 'OMP_NUM_THREADS': omp},
                'threads': {'environment': {'OMP_NUM_THREADS': omp}, 'OMP_NUM_THREADS': omp,
                            'MXNET_ENGINE_TYPE': None, 'omp_get_max_threads': None,
                            'gluoncv_gan_imported': not reference, 'mxnet_features': ['MKLDNN']}}

    def ask(self, request):
        word = request.split()[0]
        if word == 'run':
            return {'status': 'ok', 'elapsed': self.elapsed.pop(0), 'cpu': 0.1, 'maxrss_kb': 1024,
                    'os_threads': 3, 'log_lines': 0}
        return dict(FAKE_EXTRAS[word], status='ok')

    def close(self):
        return {'status': 'bye', 'maxrss_kb': 2048}

    def kill(self):
        pass


def test_rates_and_ratios_are_the_medians_of_the_timed_runs(monkeypatch):
    """Batch 8 x 2 iterations = 16 images per run; the median runs take A 0.5 s, B 2.0 s,
    C 1.0 s, D 0.25 s: 32, 8, 16 and 64 samples/s."""
    monkeypatch.setattr(run, 'WorkerProcess', FakeWorker)
    monkeypatch.setattr(run, 'probe_kernels', lambda **kwargs: {
        'isa': 'Intel AMX', 'kernels': [['convolution', 'brgconv:avx512_core_amx_bf16',
                                         'forward_training', 'bf16']], 'returncode': 0,
        'error': ''})
    args = benchmark.parse_args(['--batch-size', '8', '--iters', '2', '--repeats', '3',
                                 '--warmup', '1', '--threads', '2', '--amp',
                                 '--dataset', 'lfw_sample'])
    result = benchmark.run_benchmark(args)
    assert result['train_samples_per_s'] == pytest.approx(32.0)
    assert result['reference_samples_per_s'] == pytest.approx(8.0)
    assert result['reference_tuned_samples_per_s'] == pytest.approx(16.0)
    assert result['amp_samples_per_s'] == pytest.approx(64.0)
    assert result['ratio'] == pytest.approx(4.0)
    assert result['ratio_tuned'] == pytest.approx(2.0)
    assert result['ratio_amp'] == pytest.approx(2.0)
    assert result['sample_images_per_s'] == pytest.approx(256.0)
    assert result['loader_images_per_s'] == pytest.approx(200.0)
    assert result['loader_jpeg_images_per_s'] == pytest.approx(4.0)
    per_image = benchmark.flops_per_image(input_grad_only=True)['project']
    assert result['gflops']['project'] == pytest.approx(32.0 * per_image / 1e9)
    assert result['gemm_fraction']['project'] == pytest.approx(32.0 * per_image / 1e9 / 100.0)
    assert result['times']['reference_default'] == [4.0, 1.0, 2.0]  # warm-up left out
    report = benchmark.format_report(result)
    assert 'ratio A/B (project vs tutorial with MXNet defaults): 4.00x' in report
    assert '64.00 samples/s, 2.00x the fp32 project step' in report
    # D is compared with the bfloat16 GEMM, A and C with the fp32 one
    assert result['gemm_bf16_gflops'] == 400.0
    assert result['gemm_fraction']['project_amp'] == pytest.approx(64.0 * per_image / 1e9 / 400)
    assert 'bfloat16 GEMM (same product, bfloat16 operands): 400 GFLOP/s (4.00x' in report
    assert 'oneDNN ISA: Intel AMX' in report
    assert 'convolution forward_training brgconv:avx512_core_amx_bf16' in report


# a benchmark parent that starts one worker (which sleeps: it never notices a closed pipe),
# prints the worker's pid and waits
_PARENT = """
import os, sys, time
from gluoncv_gan.benchmark.workers import WorkerProcess
worker = WorkerProcess('A', [sys.executable, '-c', 'import time; time.sleep(600)'], dict(os.environ),
                 os.getcwd(), sys.argv[1])
print(worker.proc.pid, flush=True)
time.sleep(600)
"""


def test_the_workers_of_a_sigkilled_benchmark_end_with_it(tmp_path):
    """A benchmark worker holds nothing to save: it dies with the benchmark, even when that is
    killed with SIGKILL (and so cannot stop it)."""
    import signal
    import time
    parent = subprocess.Popen([sys.executable, '-c', _PARENT, str(tmp_path / 'worker.log')],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
    finally:
        parent.kill()  # SIGKILL
        parent.communicate(timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _running(worker):
        time.sleep(0.1)
    alive = _running(worker)
    if alive:  # not to leave it to the other tests
        os.kill(worker, signal.SIGKILL)
    assert not alive


def _running(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False
