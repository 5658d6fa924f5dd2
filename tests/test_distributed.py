"""Data-parallel training: several devices in one process, and parameter-server jobs on loopback.

The jobs run through ``python -m gluoncv_gan.launch`` on 127.0.0.1 with small nets (ngf = ndf
= 8, nz = 16) on the bundled lfw_sample, so the whole file takes well under three minutes on
two cores.
"""
import os
import re
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from gluoncv_gan import train as train_script
from gluoncv_gan.data import LFWSample
from gluoncv_gan.data.loader import CachedBatchLoader
from gluoncv_gan.distributed import Distribution
from gluoncv_gan.estimator import GANEstimator
from gluoncv_gan.launch import parse_args as parse_launch_args
from gluoncv_gan.loss import VanillaGANLoss
from output_reader import OutputReader

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ['--dataset', 'lfw_sample', '--ngf', '8', '--ndf', '8', '--nz', '16',
         '--sample-interval', '0', '--log-interval', '1', '--seed', '7']
TRAIN = [sys.executable, '-m', 'gluoncv_gan.train']


def launch(args, env, workers=2, servers=1, **kwargs):
    """Start ``gluoncv_gan.launch`` running the training script with ``args``."""
    command = [sys.executable, '-m', 'gluoncv_gan.launch', '-n', str(workers), '-s', str(servers),
               '--grace', '2', '--'] + TRAIN + args
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


def finish(proc, timeout=120):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def load(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}


def is_running_stat(name):
    return name.endswith('running_mean') or name.endswith('running_var')


@pytest.fixture(scope='module')
def job_env(tmp_path_factory):
    """One MXNET_HOME (dataset cache) for the module's processes; one OpenMP thread each."""
    home = tmp_path_factory.mktemp('mxnet_home_dist')
    return dict(os.environ, MXNET_HOME=str(home), OMP_NUM_THREADS='1')


@pytest.fixture(scope='module')
def two_worker_run(tmp_path_factory, job_env):
    """6 iterations of a 2-worker dist_sync job (batch 8 per worker), checkpoints every 3."""
    root = tmp_path_factory.mktemp('dist_run')
    env = dict(job_env, GLUONCV_GAN_WORKER_PARAMS=str(root / 'workers'))
    out = finish(launch(SMALL + ['--kvstore', 'dist_sync', '--batch-size', '8',
                                 '--iterations', '6', '--checkpoint-interval', '3',
                                 '--save-dir', str(root / 'run')], env))
    return root, out


def test_two_workers_agree_and_equal_one_process_with_two_devices(tmp_path, job_env,
                                                                   two_worker_run):
    """A 2-worker job equals one process with 2 devices and the same global batches.

    Job: 2 workers x batch 8 (dist_sync, 1 server). Reference: one process, --cpus 2, batch 8
    per device (16 per iteration).
    Both see, at every iteration, the same 16 images and latents with the same 8 on each
    worker/device (shard r = slice r of the global batch), start from the same initial
    parameters, and compute BatchNorm statistics per worker/device over the same 8 images.

    Compared after 6 iterations:
    - trainable parameters (conv weights, BatchNorm gamma/beta) of G and D: worker 0 and
      worker 1 bit-identical; each equal to the reference within 1e-5 (the gradient sums are
      the same numbers added in another place);
    - BatchNorm running mean/var: each worker keeps its own (its half of each batch), so the
      two differ; their mean equals the reference's saved statistics (gluon averages the
      per-device copies when saving).
    """
    root, out = two_worker_run
    assert re.search(r'\[worker \d\] .*\[rank 1/2\] .*at iter 6 ', out)
    assert 'kvstore traffic of this worker' in out
    workers = [load(root / 'workers' / ('worker-%d.params' % r)) for r in (0, 1)]
    # rank 0's usual output is its own parameters; rank 1 wrote no run files
    rank0_saved = load(root / 'run' / 'model.params')
    for key in rank0_saved:
        np.testing.assert_array_equal(rank0_saved[key], workers[0][key], err_msg=key)
    assert sorted(os.listdir(root / 'run' / 'checkpoints')) == ['iter-00000003', 'iter-00000006']

    env = dict(job_env, GLUONCV_GAN_WORKER_PARAMS=str(tmp_path / 'reference'))
    finish(subprocess.Popen(TRAIN + SMALL + ['--cpus', '2', '--batch-size', '8',
                                             '--iterations', '6',
                                             '--save-dir', str(tmp_path / 'run')],
                            cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True))
    assert_workers_match(workers, load(tmp_path / 'reference' / 'worker-0.params'))


def assert_workers_match(workers, one_process, *others):
    """Two workers' parameters against one process with two devices (and other jobs' rank 0):
    trainable parameters bit-identical between the workers and within 1e-5 of each reference;
    BatchNorm running statistics each worker's own (they differ), their mean the one process's
    saved ones."""
    assert workers[0].keys() == workers[1].keys() == one_process.keys()
    stats = [k for k in one_process if is_running_stat(k)]
    assert stats and any(not np.array_equal(workers[0][k], workers[1][k]) for k in stats)
    for key in one_process:
        if is_running_stat(key):
            np.testing.assert_allclose((workers[0][key] + workers[1][key]) / 2, one_process[key],
                                       rtol=1e-5, atol=1e-6, err_msg=key)
            continue
        np.testing.assert_array_equal(workers[0][key], workers[1][key], err_msg=key)
        for reference in (one_process,) + others:
            np.testing.assert_allclose(workers[0][key], reference[key], rtol=1e-5, atol=1e-6,
                                       err_msg=key)


def test_resumed_distributed_run_continues_identically(tmp_path, job_env, two_worker_run):
    """Both workers resume from rank 0's checkpoint at iteration 3 and end where the
    uninterrupted job ended: rank 0's model.params (trainable parameters and rank 0's
    BatchNorm statistics, which the checkpoint holds) bit-identical, and the trainable
    parameters of both workers bit-identical to the uninterrupted workers'."""
    root, _ = two_worker_run
    env = dict(job_env, GLUONCV_GAN_WORKER_PARAMS=str(tmp_path / 'workers'))
    out = finish(launch(['--resume', str(root / 'run' / 'checkpoints' / 'iter-00000003'),
                         '--save-dir', str(tmp_path / 'run')], env))
    assert out.count('Resumed from') == 2
    np.testing.assert_equal(load(tmp_path / 'run' / 'model.params'),
                            load(root / 'run' / 'model.params'))
    for rank in (0, 1):
        resumed = load(tmp_path / 'workers' / ('worker-%d.params' % rank))
        whole = load(root / 'workers' / ('worker-%d.params' % rank))
        for key in whole:
            if not is_running_stat(key):
                np.testing.assert_array_equal(resumed[key], whole[key], err_msg=key)


def _process_groups():
    """{pgid: [pid, ...]} of the processes alive now (Linux /proc)."""
    groups = {}
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                with open('/proc/%s/stat' % name) as f:
                    fields = f.read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if fields[0] != 'Z':
                groups.setdefault(int(fields[2]), []).append(int(name))
    return groups


def _start_and_wait_for_iteration(args, env, iteration=3, timeout=90):
    """Start a job; return (launcher's OutputReader, {process name: pid}) once it logged
    ``iteration``."""
    job = OutputReader(launch(args, env))
    lines = job.wait_for(' at iter %d ' % iteration, timeout=timeout)
    pids = {}
    for line in lines:
        started = re.match(r'\[launch\] started (.+) \(pid (\d+)\)', line)
        if started:
            pids[started.group(1)] = int(started.group(2))
    assert set(pids) == {'scheduler', 'server 0', 'worker 0', 'worker 1'}, ''.join(lines)
    return job, pids


@pytest.mark.parametrize('target, signum, message', [
    ('worker 1', signal.SIGKILL, 'worker 1 was killed by SIGKILL: stopping the job'),
    ('launcher', signal.SIGINT, 'interrupted by SIGINT: stopping the job'),
])
def test_a_killed_worker_or_ctrl_c_stops_the_whole_job(tmp_path, job_env, target, signum,
                                                       message):
    """SIGKILL one worker mid-training (or Ctrl-C the launcher): the launcher stops the
    scheduler, the server and the workers, exits non-zero (the job of 5000 iterations would
    outlast the wait's timeout), and leaves no process behind (none of the job's pids or
    process groups is alive)."""
    job, pids = _start_and_wait_for_iteration(
        SMALL + ['--kvstore', 'dist_sync', '--batch-size', '8', '--epochs', '1000',
                 '--iterations', '5000',
                 '--save-dir', str(tmp_path / 'run')], job_env)
    os.kill(job.proc.pid if target == 'launcher' else pids[target], signum)
    out = job.finish(timeout=60)
    assert job.proc.returncode != 0
    assert message in out
    left = {pgid: members for pgid, members in _process_groups().items()
            if pgid in pids.values()}
    assert not left, left
    assert not any(os.path.exists('/proc/%d' % pid) for pid in pids.values())


def _running(pids):
    """The pids among ``pids`` of processes still running (zombies are not)."""
    running = []
    for pid in pids:
        try:
            with open('/proc/%d/stat' % pid) as f:
                if f.read().rsplit(')', 1)[1].split()[0] != 'Z':
                    running.append(pid)
        except OSError:
            pass
    return running


def test_a_sigkilled_launcher_leaves_no_orphans(tmp_path, job_env):
    """SIGKILL the launcher mid-training: it cannot stop the job itself, yet its scheduler,
    server and workers all end within the lifeline's grace period (a worker blocked on a server
    that is gone does not stay behind)."""
    from gluoncv_gan.utils.lifeline import GRACE_SECONDS
    job, pids = _start_and_wait_for_iteration(
        SMALL + ['--kvstore', 'dist_sync', '--batch-size', '8', '--epochs', '1000',
                 '--iterations', '5000', '--save-dir', str(tmp_path / 'run')], job_env)
    os.kill(job.proc.pid, signal.SIGKILL)
    job.finish(timeout=60)
    deadline = time.monotonic() + GRACE_SECONDS + 50
    while _running(pids.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _running(pids.values())
    for pid in left:  # not to leave them to the other tests
        os.kill(pid, signal.SIGKILL)
    assert not left, {name: pid for name, pid in pids.items() if pid in left}


def test_dist_async_trains_and_checkpoints_without_optimiser_states(tmp_path, job_env):
    """dist_async: the servers run the optimiser (gluon allows nothing else), so a job
    completes, its checkpoints hold the weights and empty optimiser-state files, and a run
    resumed from one restarts the optimiser with a warning."""
    run = tmp_path / 'run'
    out = finish(launch(SMALL + ['--kvstore', 'dist_async', '--batch-size', '8', '--iterations',
                                 '4', '--checkpoint-interval', '2', '--save-dir', str(run)],
                        job_env))
    assert out.count('Training finished: 4 iterations') == 2
    latest = run / 'checkpoints' / 'iter-00000004'
    assert (latest / 'model.params').stat().st_size > 0
    assert (latest / 'trainer_g.states').stat().st_size == 0
    out = finish(launch(['--resume', str(latest), '--iterations', '6'], job_env))
    assert 'optimiser states live on the servers' in out
    assert out.count('Training finished: 2 iterations') == 2


class _TinyGenerator(nn.HybridBlock):
    def __init__(self, nz=8, **kwargs):
        super(_TinyGenerator, self).__init__(**kwargs)
        self.nz = nz
        with self.name_scope():
            self.body = nn.HybridSequential(prefix='')
            self.body.add(nn.Conv2DTranspose(16, 4, 1, 0, in_channels=nz), nn.Activation('relu'),
                          nn.Conv2DTranspose(3, 16, 16, 0, in_channels=16),
                          nn.Activation('tanh'))

    def hybrid_forward(self, F, z):
        return self.body(z)


class _TinyDiscriminator(nn.HybridBlock):
    def __init__(self, **kwargs):
        super(_TinyDiscriminator, self).__init__(**kwargs)
        with self.name_scope():
            self.body = nn.HybridSequential(prefix='')
            self.body.add(nn.Conv2D(8, 4, 4, 0, in_channels=3), nn.LeakyReLU(0.2),
                          nn.Conv2D(1, 16, 1, 0, in_channels=8))

    def hybrid_forward(self, F, x):
        return F.reshape(self.body(x), shape=(-1,))


class _TinyGAN(nn.HybridBlock):
    """A GAN pair without BatchNorm, for 64x64 images."""

    def __init__(self, **kwargs):
        super(_TinyGAN, self).__init__(**kwargs)
        with self.name_scope():
            self.generator = _TinyGenerator(prefix='g_')
            self.discriminator = _TinyDiscriminator(prefix='d_')


def test_two_cpu_contexts_give_the_update_of_one_context_with_the_same_global_batch():
    """Two CPU contexts in one process (batch 16 split 8 + 8) and one context (all 16):
    after 3 iterations every parameter of G and D agrees within float tolerance.

    The nets have no BatchNorm: with it, each device normalises its own 8 images, which is a
    different computation from normalising all 16 (by design, see docs/distributed.md), so
    only BatchNorm-free nets can show that the update itself is the same. Trainers come from
    Distribution('device'), the path train.py uses in one process.
    """
    init = _TinyGAN()
    init.initialize(mx.init.Normal(0.02))
    results = []
    for ctx in ([mx.cpu(0), mx.cpu(1)], [mx.cpu(0)]):
        net = _TinyGAN()
        net.initialize(ctx=ctx)
        for dst, src in zip(net.collect_params().values(), init.collect_params().values()):
            dst.set_data(src.data())
        dist = Distribution('device')
        opts = {'learning_rate': 2e-3, 'beta1': 0.5}
        trainer_g = dist.make_trainer(net.generator.collect_params(), 'adam', opts)
        trainer_d = dist.make_trainer(net.discriminator.collect_params(), 'adam', opts)
        est = GANEstimator(net, VanillaGANLoss(), trainer_g, trainer_d, context=ctx, seed=1)
        est.fit(CachedBatchLoader(LFWSample(), 16, seed=0), total_iterations=3)
        results.append({k: v.data(ctx[0]).asnumpy()
                        for k, v in net._collect_params_with_prefix().items()})
    start = {k: v.data().asnumpy() for k, v in init._collect_params_with_prefix().items()}
    for key in results[0]:
        assert not np.allclose(results[0][key], start[key]), key
        np.testing.assert_allclose(results[0][key], results[1][key], rtol=1e-5, atol=1e-6,
                                   err_msg=key)


def test_shards_side_by_side_are_the_global_batch():
    data = LFWSample()
    whole = CachedBatchLoader(data, 16, seed=3)
    shards = [CachedBatchLoader(data, 8, seed=3, num_shards=2, shard=r) for r in (0, 1)]
    assert len(whole) == len(shards[0]) == len(shards[1]) == 300 // 16
    for epoch in (0, 1):
        together = np.stack([s.epoch_indices(epoch) for s in shards], axis=0)
        glob = whole.epoch_indices(epoch)[:len(whole) * 16].reshape(-1, 2, 8)
        np.testing.assert_array_equal(together.reshape(2, -1, 8).transpose(1, 0, 2), glob)
    with pytest.raises(ValueError, match='shard 2 does not exist'):
        CachedBatchLoader(data, 8, num_shards=2, shard=2)


def test_latents_of_a_worker_are_its_rows_of_the_global_batch():
    from types import SimpleNamespace
    from gluoncv_gan.estimator import latent_batch
    parts = [GANEstimator.latent(SimpleNamespace(seed=5, iteration=4, nz=8, shard=(rank, 2)), 8)
             for rank in (0, 1)]
    np.testing.assert_array_equal(np.concatenate(parts), latent_batch(5, 4, 16, 8))


def test_horovod_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'horovod', None)
    monkeypatch.setitem(sys.modules, 'horovod.mxnet', None)
    with pytest.raises(SystemExit) as err:
        train_script.main(SMALL + ['--horovod', '--save-dir', str(tmp_path / 'run')])
    assert err.value.code == 2
    message = str(err.value)  # the one line also printed on stderr
    assert '--horovod needs horovod.mxnet' in message and 'pip install' in message
    assert 'horovodrun -np 2' in message and '--kvstore dist_sync' in message


def test_dist_kvstore_without_a_job_is_a_clear_error(tmp_path, monkeypatch):
    for name in ('DMLC_ROLE', 'DMLC_PS_ROOT_URI', 'DMLC_PS_ROOT_PORT', 'DMLC_NUM_WORKER',
                 'DMLC_NUM_SERVER'):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as err:
        train_script.main(SMALL + ['--kvstore', 'dist_sync', '--save-dir', str(tmp_path / 'r')])
    assert err.value.code == 2
    message = str(err.value)  # the one line also printed on stderr
    assert 'DMLC_ROLE' in message and 'python -m gluoncv_gan.launch -n 2 -s 1' in message


def test_launcher_needs_a_command(capsys):
    with pytest.raises(SystemExit):
        parse_launch_args(['-n', '2'])
    assert 'give the command to run after --' in capsys.readouterr().err
    args = parse_launch_args(['-n', '2', '--', 'python', '-c', 'pass'])
    assert args.command == ['python', '-c', 'pass'] and args.num_servers == 2
