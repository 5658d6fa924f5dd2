"""What a user meets first: subpackages, the console script, epoch numbers, speed, threads, amp,
and a test run's warnings."""
import logging
import os
import re
import subprocess
import sys
import types
import warnings

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE = 'GLUONCV_GAN_WARNINGS_PROBE'


def _python(code, env=None, timeout=120):
    environment = dict(os.environ if env is None else env)
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=timeout, env=environment, cwd=REPO)


def test_subpackages_are_attributes_after_import():
    result = _python('import gluoncv_gan as g; print(g.data.LFW.__name__, g.metrics.'
                     'sliced_wasserstein_distance.__name__, g.estimator.GANEstimator.__name__, '
                     'g.utils.fileio.atomic_path.__name__, g.nn.SNConv2D.__name__, '
                     'g.loss.get_objective.__name__, g.model_zoo.get_model.__name__)')
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['LFW', 'sliced_wasserstein_distance', 'GANEstimator',
                                     'atomic_path', 'SNConv2D', 'get_objective', 'get_model']


# ---------------------------------------------------------------- console script

def test_one_console_script_runs_every_command(capsys, monkeypatch):
    from gluoncv_gan import cli
    with open(os.path.join(REPO, 'setup.py')) as f:
        assert "'gluoncv-gan=gluoncv_gan.cli:main'" in f.read()
    assert set(cli.COMMANDS) == {'train', 'sample', 'evaluate', 'export', 'report', 'compare',
                                 'benchmark', 'launch', 'prepare-lfw'}
    for command in cli.COMMANDS:
        monkeypatch.setattr(sys, 'argv', ['gluoncv-gan'])
        with pytest.raises(SystemExit) as stop:
            cli.main([command, '--help'])
        assert stop.value.code == 0
        first = capsys.readouterr().out.splitlines()[0]
        assert first.startswith('usage: gluoncv-gan %s ' % command), first
    assert cli.main(['--help']) == 0
    listing = capsys.readouterr().out
    assert all(re.search(r'^  %s ' % c, listing, re.M) for c in cli.COMMANDS)
    assert cli.main(['trian']) == 2
    assert 'did you mean train?' in capsys.readouterr().err


def test_usage_lines_name_the_command_that_ran():
    result = subprocess.run([sys.executable, '-m', 'gluoncv_gan.export', '--help'],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.stdout.startswith('usage: python -m gluoncv_gan.export ')
    script = os.path.join(os.path.dirname(sys.executable), 'gluoncv-gan')
    if not os.path.isfile(script):
        pytest.skip('the package is not installed with its console scripts (pip install -e .)')
    result = subprocess.run([script, 'launch', '--help'], capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('usage: gluoncv-gan launch -n WORKERS')


# ---------------------------------------------------------------- epochs and speed

@pytest.fixture(scope='module')
def short_run(tmp_path_factory):
    from gluoncv_gan import train
    folder = tmp_path_factory.mktemp('numbering') / 'run'
    patch = pytest.MonkeyPatch()
    patch.setenv('MXNET_HOME', str(tmp_path_factory.mktemp('numbering_home')))
    try:
        train.main(['--dataset', 'lfw_sample', '--batch-size', '32', '--ngf', '8', '--ndf', '8',
                    '--nz', '16', '--epochs', '2', '--log-interval', '4', '--eval-interval', '1',
                    '--eval-samples', '64', '--save-dir', str(folder)])
    finally:
        patch.undo()
    return folder


def test_epochs_are_numbered_from_one_everywhere(short_run):
    import json
    per_epoch = 300 // 32
    log = (short_run / 'train.log').read_text()
    assert 'Training from iteration 0 (epoch 1, batch 0)' in log
    tagged = [int(n) for n in re.findall(r'\[Epoch (\d+)\]', log)]
    assert sorted(set(tagged)) == [1, 2]
    for iteration, epoch in re.findall(r'at iter (\d+) epoch (\d+)', log):
        assert int(epoch) == (int(iteration) - 1) // per_epoch + 1
    assert '[Epoch 2] finished' in log and '[Epoch 0]' not in log
    for row in json.loads((short_run / 'history.json').read_text()):
        assert row['epoch'] == (row['iteration'] - 1) // per_epoch + 1
    assert [r['epoch'] for r in json.loads((short_run / 'evaluation.json').read_text())] == [1, 2]
    assert {'epoch-0001.png', 'epoch-0002.png'} <= set(os.listdir(short_run / 'samples'))


def test_speed_and_eta_leave_out_the_other_handlers_time(monkeypatch, caplog):
    """A fake clock: 1 s per iteration of training, 50 s of checkpoint, 100 s of evaluation."""
    import mxnet as mx
    from gluoncv_gan.estimator import event_handler, gan_metrics
    now = [1000.0]
    monkeypatch.setattr(event_handler, 'time', types.SimpleNamespace(time=lambda: now[0]))
    handler = event_handler.GANLoggingHandler(2, total_iterations=8, batches_per_epoch=4,
                                              logger=logging.getLogger('speed-test'),
                                              progress_bar=False)
    est = types.SimpleNamespace(iteration=0, epoch=0, batch=0, batch_size=16,
                                epoch_complete=False, train_metrics=gan_metrics())
    batch = (mx.nd.zeros((16, 1)),)
    caplog.set_level(logging.INFO, logger='speed-test')
    handler.train_begin(est)
    for epoch in range(2):
        handler.epoch_begin(est)
        for _ in range(4):
            now[0] += 1.0  # the iteration's training
            est.iteration += 1
            est.batch += 1
            est.epoch_complete = est.batch == 4
            handler.clock.batch_end(est)
            if est.iteration == 3:
                now[0] += 50.0  # a checkpoint written by a handler at this batch end
            handler.batch_end(est, batch=batch)
        handler.clock.epoch_end(est)
        now[0] += 100.0  # the epoch-end evaluation, grids, checkpoint and report
        handler.epoch_end(est)
        est.epoch, est.batch = est.epoch + 1, 0
    lines = [r.getMessage() for r in caplog.records]
    speeds = [float(s) for s in re.findall(r'speed: ([\d.]+) samples/s', '\n'.join(lines))]
    assert speeds == [16.0] * 4  # 2 iterations of 16 images in 2 s of training each time
    etas = re.findall(r'ETA (\S+)', '\n'.join(lines))
    assert etas == ['0m06s', '0m04s', '0m02s', '0m00s']
    summaries = [line for line in lines if 'finished in' in line]
    assert summaries[0].startswith('[Epoch 1] finished in 154.0 s (4 iterations, 16.0 samples/s;'
                                   ' 150.0 s of it in')
    assert summaries[1].startswith('[Epoch 2] finished in 104.0 s (4 iterations, 16.0 samples/s;'
                                   ' 100.0 s of it in')


# ---------------------------------------------------------------- threads, amp, warnings

def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def test_usable_cores_counts_the_affinity_mask_else_every_cpu(monkeypatch):
    from gluoncv_gan.utils.cores import usable_cores
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: {0, 5}, raising=False)
    monkeypatch.setattr(os, 'cpu_count', lambda: 8)
    assert usable_cores() == 2
    monkeypatch.delattr(os, 'sched_getaffinity')
    assert usable_cores() == 8
    monkeypatch.setattr(os, 'cpu_count', lambda: None)  # undeterminable
    assert usable_cores() == 1


TINY_TRAIN = ("import sys, mxnet; from gluoncv_gan import train; train.main(['--dataset', "
              "'lfw_sample', '--batch-size', '8', '--ngf', '4', '--ndf', '4', '--nz', '4', "
              "'--iterations', '1', '--no-hybridize', '--save-dir', sys.argv[1]])")


def test_mxnet_imported_first_is_quiet_on_import_and_advised_once_by_train(tmp_path):
    if _cores() < 2:
        pytest.skip('one core: MXNet uses it whatever the import order')
    env = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}
    first = _python('import mxnet, gluoncv_gan', env)
    assert first.returncode == 0, first.stderr
    assert 'OMP_NUM_THREADS' not in first.stderr + first.stdout  # a notebook's import is quiet

    run = tmp_path / 'run'
    trained = subprocess.run([sys.executable, '-c', TINY_TRAIN, str(run)], capture_output=True,
                             text=True, timeout=300, env=env, cwd=REPO)
    assert trained.returncode == 0, trained.stderr[-2000:]
    console = [line for line in (trained.stdout + trained.stderr).splitlines()
               if 'OMP_NUM_THREADS' in line]
    assert len(console) == 1, console
    assert 'set OMP_NUM_THREADS=%d before starting Python' % _cores() in console[0]
    logged = [line for line in (run / 'train.log').read_text().splitlines()
              if 'OMP_NUM_THREADS' in line]
    assert len(logged) == 1 and logged[0].endswith(console[0].split(' ', 2)[-1])

    # the benchmark gives it too, before it measures anything (here: nothing)
    bench = _python('import mxnet; from gluoncv_gan import benchmark\n'
                    'def measured(args, progress):\n'
                    '    raise SystemExit(0)\n'
                    'benchmark.run_benchmark = measured\n'
                    'benchmark.main([])', env)
    assert bench.returncode == 0, bench.stderr
    advice = [line for line in bench.stderr.splitlines() if 'OMP_NUM_THREADS' in line]
    assert len(advice) == 1 and advice[0].startswith('warning: mxnet was imported before')

    second = _python('import os, gluoncv_gan, mxnet; print(os.environ["OMP_NUM_THREADS"])', env)
    assert second.stdout.strip() == str(_cores()) and 'OMP_NUM_THREADS' not in second.stderr
    chosen = subprocess.run([sys.executable, '-c', TINY_TRAIN, str(tmp_path / 'chosen')],
                            capture_output=True, text=True, timeout=300, cwd=REPO,
                            env=dict(env, OMP_NUM_THREADS='1'))
    assert chosen.returncode == 0, chosen.stderr[-2000:]
    assert 'OMP_NUM_THREADS' not in chosen.stdout + chosen.stderr  # the user chose


def test_amp_is_bfloat16_on_cpu_and_refused_with_gpus(tmp_path, capsys):
    from gluoncv_gan import train
    from gluoncv_gan.utils.config import ConfigError, load_config
    assert load_config(None, {'amp': True})['amp'] is True
    with pytest.raises(ConfigError, match="amp means bfloat16 convolutions on CPU.*drop --amp"):
        load_config(None, {'amp': True, 'gpus': '0,1'})
    with pytest.raises(SystemExit, match='bfloat16'):
        train.main(['--dataset', 'lfw_sample', '--amp', '--gpus', '0',
                    '--save-dir', str(tmp_path / 'run')])
    assert not (tmp_path / 'run').exists()
    capsys.readouterr()
    with pytest.raises(SystemExit):
        train.parse_args(['--help'])
    text = ' '.join(capsys.readouterr().out.split())
    assert "bfloat16 convolutions and transposed convolutions on CPU" in text and "not fp16" in text


@pytest.mark.skipif(not os.environ.get(PROBE), reason='run by the test below, in its own pytest')
def test_warnings_probe():
    """Raises one third-party deprecation and one project warning (see the next test)."""
    warnings.warn_explicit('third-party deprecation', DeprecationWarning, 'mxnet/base.py', 1,
                           module='mxnet.base')
    warnings.warn_explicit('project warning', UserWarning, 'gluoncv_gan/train.py', 1,
                           module='gluoncv_gan.train')


def test_a_plain_pytest_run_shows_only_the_projects_warnings():
    """`pytest` from the repository root, as the README runs it, filters third-party warnings."""
    result = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-k', 'warnings_probe'],
        capture_output=True, text=True, timeout=300, cwd=REPO, env=dict(os.environ, **{PROBE: '1'}))
    assert result.returncode == 0, result.stdout[-3000:]
    assert 'project warning' in result.stdout
    assert 'third-party deprecation' not in result.stdout
    # a module skipped at collection (an optional part not installed, e.g. Horovod) adds
    # 'N skipped' whatever -k selects: the count depends on the environment, not on warnings
    assert re.search(r'1 passed, (\d+ skipped, )?\d+ deselected, 1 warning in', result.stdout), \
        result.stdout[-500:]


# ---------------------------------------------------------------- --batch-size per device

def test_batch_size_is_per_device_and_old_multi_device_checkpoints_resume_as_before(tmp_path):
    import json
    from gluoncv_gan import train
    run = tmp_path / 'run'
    small = ['--dataset', 'lfw_sample', '--ngf', '8', '--ndf', '8', '--nz', '16']
    train.main(small + ['--cpus', '2', '--batch-size', '8', '--iterations', '2',
                        '--checkpoint-interval', '1', '--keep-checkpoints', '5',
                        '--save-dir', str(run)])
    log = (run / 'train.log').read_text()
    assert '18 batches of 16 per epoch' in log  # 300 images, 8 per device x 2 devices
    assert 'global batch 16 (8 per device x 2 device(s) x 1 worker(s))' in log
    newest = run / 'checkpoints' / 'iter-00000002'
    state = json.loads((newest / 'state.json').read_text())
    assert state['handlers']['job'] == {'num_workers': 1, 'devices': 2}

    # the same checkpoint as written before batch_size counted devices: batch_size 16 meant
    # 16 images per iteration over the 2 devices, and no device count was saved
    state['config']['batch_size'] = 16
    state['handlers']['job'] = {'num_workers': 1}
    (newest / 'state.json').write_text(json.dumps(state))
    with pytest.raises(SystemExit):
        train.main(['--resume', str(run), '--iterations', '3'])
    log = (run / 'train.log').read_text()
    assert ('with 16 images per worker and iteration, but this job has 1 worker(s) with 32 '
            '(--batch-size 16 per device x 2 device(s)): resume with the same number of workers '
            '(launch -n 1) and --batch-size 8') in log
    train.main(['--resume', str(run), '--iterations', '3', '--batch-size', '8'])
    log = (run / 'train.log').read_text()
    assert 'Resumed from %s: epoch 1, batch 2, iteration 2' % newest in log
    assert json.loads((run / 'checkpoints' / 'iter-00000003' / 'state.json').read_text())[
        'iteration'] == 3
