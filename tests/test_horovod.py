"""Horovod (``--horovod``): 2 ranks on loopback, started by horovodrun with Gloo.

Horovod is not part of the default install: it compiles against the installed MXNet (a few
minutes on 2 cores). CI builds it (``.ci/build_horovod``, called by ``.ci/run`` and
``.ci/horovod``); where ``horovod.mxnet`` does not import, every test here skips.
"""
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from output_reader import OutputReader, _descendants
from test_distributed import (SMALL, TRAIN, assert_workers_match, finish, is_running_stat,
                              launch, load)

hvd = pytest.importorskip('horovod.mxnet', reason='horovod.mxnet does not import: build it with '
                          '.ci/build_horovod (docs/distributed.md)')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOROVODRUN = os.path.join(os.path.dirname(sys.executable), 'horovodrun')


def horovodrun(args, env, ranks=2, flag=('--horovod',)):
    """Start ``horovodrun --gloo`` running the training script with ``args`` on loopback."""
    command = [HOROVODRUN, '-np', str(ranks), '-H', 'localhost:%d' % ranks, '--gloo'] + TRAIN + \
        list(flag) + args
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


@pytest.fixture(scope='module')
def job_env(tmp_path_factory):
    home = tmp_path_factory.mktemp('mxnet_home_hvd')
    return dict(os.environ, MXNET_HOME=str(home), OMP_NUM_THREADS='1')


def test_two_ranks_equal_the_dist_sync_job_and_one_process(tmp_path, job_env):
    """2 Horovod ranks x batch 8 per rank, 6 iterations, against the same job on the parameter
    servers (2 workers x 8) and one process with 2 devices x 8: the same global batches,
    latents and initial weights, so after 6 iterations
    - the two ranks' trainable parameters are bit-identical, and equal both references within
      1e-5 (the same gradient sums, added in another order);
    - the BatchNorm running statistics are each rank's own, and their mean is the one process's;
    - rank 0's run folder holds the run's files, and its checkpoints resume."""
    common = SMALL + ['--batch-size', '8', '--iterations', '6']
    runs, outs = {}, {}
    for name, start in (('horovod', horovodrun), ('dist_sync', launch)):
        env = dict(job_env, GLUONCV_GAN_WORKER_PARAMS=str(tmp_path / name))
        extra = ['--kvstore', 'dist_sync'] if name == 'dist_sync' else \
            ['--checkpoint-interval', '3']
        outs[name] = finish(start(common + extra + ['--save-dir', str(tmp_path / (name + '-run'))],
                                  env), timeout=240)
        runs[name] = [load(tmp_path / name / ('worker-%d.params' % r)) for r in (0, 1)]
    assert 'Devices: Horovod, rank 0 of 2 workers' in outs['horovod']
    env = dict(job_env, GLUONCV_GAN_WORKER_PARAMS=str(tmp_path / 'one'))
    finish(subprocess.Popen(TRAIN + common + ['--cpus', '2', '--save-dir', str(tmp_path / 'one-run')],
                            cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True), timeout=240)
    one = load(tmp_path / 'one' / 'worker-0.params')
    ranks = runs['horovod']
    assert_workers_match(ranks, one, runs['dist_sync'][0])
    run = tmp_path / 'horovod-run'
    assert sorted(os.listdir(run / 'checkpoints')) == ['iter-00000003', 'iter-00000006']
    np.testing.assert_equal(load(run / 'model.params'), ranks[0])

    # the checkpoint of iteration 3 resumes under Horovod (its config says so: no --horovod) and
    # ends where the whole run ended
    env = dict(job_env, GLUONCV_GAN_WORKER_PARAMS=str(tmp_path / 'resumed'))
    out = finish(horovodrun(['--resume', str(run / 'checkpoints' / 'iter-00000003'),
                             '--save-dir', str(tmp_path / 'resumed-run')], env, flag=()),
                 timeout=240)
    assert 'Devices: Horovod, rank 0 of 2 workers' in out
    assert out.count('Resumed from') == 2
    for rank in (0, 1):
        resumed = load(tmp_path / 'resumed' / ('worker-%d.params' % rank))
        for key in one:
            if not is_running_stat(key):
                np.testing.assert_array_equal(resumed[key], ranks[rank][key], err_msg=key)


def _rank_pids(root):
    """{rank: pid} of the training processes under horovodrun's ``root`` pid."""
    pids = {}
    for pid in _descendants(root):
        try:
            with open('/proc/%d/cmdline' % pid, 'rb') as f:
                words = f.read().decode().split('\0')
            with open('/proc/%d/environ' % pid, 'rb') as f:
                env = dict(item.split('=', 1) for item in f.read().decode().split('\0')
                           if '=' in item)
        except OSError:
            continue
        if 'gluoncv_gan.train' in words and 'HOROVOD_RANK' in env:
            pids[int(env['HOROVOD_RANK'])] = pid
    return pids


@pytest.mark.parametrize('target, signum', [('rank 1', signal.SIGKILL),
                                            ('horovodrun', signal.SIGINT)])
def test_a_killed_rank_or_ctrl_c_stops_the_whole_job(tmp_path, job_env, target, signum):
    """SIGKILL one rank mid-training (or Ctrl-C horovodrun): the job exits non-zero well
    before its 5000 iterations could end, and none of its processes is left. On Ctrl-C
    horovodrun passes SIGTERM to the ranks, which stop at the same iteration, and rank 0 leaves a
    checkpoint of it with the command that resumes."""
    job = OutputReader(horovodrun(SMALL + ['--batch-size', '8', '--epochs', '1000',
                                           '--iterations', '5000',
                                           '--save-dir', str(tmp_path / 'run')], job_env))
    job.wait_for(' at iter 3 ', timeout=180)
    pids = {}
    for _ in range(50):
        pids = _rank_pids(job.proc.pid)
        if len(pids) == 2:
            break
        time.sleep(0.1)
    assert sorted(pids) == [0, 1], pids
    everyone = set(_descendants(job.proc.pid))
    os.kill(pids[1] if target == 'rank 1' else job.proc.pid, signum)
    out = job.finish(timeout=120)
    assert job.proc.returncode != 0, out
    assert not re.search(r' at iter 5000 ', out)
    # horovodrun may return while a rank it killed is still being torn down by the kernel
    deadline = time.monotonic() + 10
    left = [pid for pid in everyone if _alive(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [pid for pid in left if _alive(pid)]
    assert not left, (left, out)
    if target == 'horovodrun':
        stops = dict(re.findall(r'\[rank (\d)/2\] stopped at iteration (\d+); resume with: '
                                r'horovodrun -np 2 --gloo', out))
        assert sorted(stops) == ['0', '1'] and stops['0'] == stops['1'], out
        assert os.listdir(tmp_path / 'run' / 'checkpoints') == ['iter-%08d' % int(stops['0'])]


def _alive(pid):
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False
