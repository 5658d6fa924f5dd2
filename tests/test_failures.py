"""Training under failure: diverging losses, signals, damaged checkpoints, bad data, bad flags.

Every failure must end with one line ``error: <what>; <what to do>``, exit code 2 and no
traceback, and leave what was on disk whole. Runs use the bundled lfw_sample and tiny nets.
"""
import errno
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys

import cv2
import mxnet as mx
import numpy as np
import pytest

from gluoncv_gan import evaluate, sample
from gluoncv_gan import train as train_script
from gluoncv_gan.data import FaceFolder
from gluoncv_gan.data.lfw import SAMPLE_ROOT
from gluoncv_gan.estimator import checkpoint as ckpt
from gluoncv_gan.pipeline import training
from gluoncv_gan.utils.command_line import DEBUG_VARIABLE, UserError
from output_reader import OutputReader
from params_check import assert_same_parameters

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ['--dataset', 'lfw_sample', '--batch-size', '8', '--ngf', '8', '--ndf', '8', '--nz', '16',
         '--sample-interval', '0']
TIMEOUT = 180


def sample_faces(count):
    """``count`` JPEG paths of the bundled sample."""
    paths = []
    for folder, _, names in sorted(os.walk(SAMPLE_ROOT)):
        paths += [os.path.join(folder, n) for n in sorted(names) if n.endswith('.jpg')]
    return paths[:count]


def snapshot(folder):
    """{relative path: bytes} of every file under ``folder``."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, 'rb') as f:
                files[os.path.relpath(path, folder)] = f.read()
    return files


def checkpoints_of(run):
    return ckpt.list_checkpoints(os.path.join(str(run), 'checkpoints'))


def one_line_error(capsys, call, *args):
    """Run ``call(*args)`` expecting exit 2; return its single stderr line."""
    with pytest.raises(SystemExit) as info:
        call(*args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith('error: '), lines[0]
    return lines[0]


def run_cli(module, args, timeout=TIMEOUT, env=None, **kwargs):
    """Run ``python -m module args``; (exit code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, '-m', module] + args, cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=env, **kwargs)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def run4(tmp_path):
    """A finished 4-iteration run with checkpoints at iterations 2 and 4."""
    run = tmp_path / 'run'
    train_script.main(SMALL + ['--iterations', '4', '--checkpoint-interval', '2',
                               '--log-interval', '1', '--save-dir', str(run)])
    assert [i for i, _ in checkpoints_of(run)] == [2, 4]
    return run


# ---------------------------------------------------------------------------------------------
# 1. non-finite losses
# ---------------------------------------------------------------------------------------------
def test_diverging_run_stops_and_keeps_the_good_checkpoints(run4, capsys):
    before = snapshot(run4 / 'checkpoints')
    final = (run4 / 'model.params').read_bytes()
    line = one_line_error(capsys, train_script.main,
                          ['--resume', str(run4), '--iterations', '40', '--lr', '1e30',
                           '--checkpoint-interval', '1', '--keep-checkpoints', '1'])
    assert 'non-finite at iteration 5' in line and 'lower --lr' in line
    assert snapshot(run4 / 'checkpoints') == before  # nothing written, nothing pruned
    assert (run4 / 'model.params').read_bytes() == final
    for _, path in checkpoints_of(run4):
        assert ckpt.checkpoint_problem(path) is None  # they load, and hold finite values
    assert 'non-finite at iteration 5' in (run4 / 'train.log').read_text()


def test_non_finite_parameters_are_never_written(tmp_path):
    from gluoncv_gan.model_zoo import get_model
    net = get_model('dcgan_lfw', nz=16, ngf=8, ndf=8)
    param = list(net.generator.collect_params().values())[0]
    param.set_data(param.data() * np.nan)
    trainer = mx.gluon.Trainer(net.collect_params(), 'adam')
    with pytest.raises(ckpt.NonFiniteError, match='NaN or infinite'):
        ckpt.save_checkpoint(str(tmp_path), 3, net, trainer, trainer, np.zeros(1), {})
    assert os.listdir(str(tmp_path)) == []


# ---------------------------------------------------------------------------------------------
# 2. resume honours its flags
# ---------------------------------------------------------------------------------------------
def test_resume_applies_the_new_rate_and_keeps_the_moments(run4, caplog):
    args = train_script.parse_args(['--resume', str(run4), '--lr', '0.001', '--beta1', '0.7',
                                    '--lr-d', '0.0005'])
    config, save_dir, checkpoint = train_script.resolve_run(args)
    with caplog.at_level('INFO'):
        estimator = training.train(config, save_dir, checkpoint)
    assert 'changed on resume: beta1 0.5 -> 0.7, lr 0.0002 -> 0.001, lr_d 0.0002 -> 0.0005' \
        in caplog.text
    assert 'nothing left to train' in caplog.text
    g, d = estimator.trainer_g, estimator.trainer_d
    assert (g.learning_rate, d.learning_rate) == (0.001, 0.0005)
    assert g.optimizer.beta1 == d.optimizer.beta1 == 0.7
    for trainer, name in ((g, 'trainer_g.states'), (d, 'trainer_d.states')):
        with open(os.path.join(checkpoint, name), 'rb') as f:
            saved, _ = pickle.load(f)
        states = trainer._updaters[0].states
        assert saved.keys() == states.keys() and saved
        for key in saved:  # Adam's (mean, variance) of each parameter
            for a, b in zip(saved[key], states[key]):
                np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())


@pytest.mark.parametrize('flags, words', [
    (['--ngf', '16'], 'ngf 8 in the checkpoint, 16 asked'),
    (['--nz', '32'], 'nz 16 in the checkpoint, 32 asked'),
    (['--loss', 'lsgan'], "loss 'vanilla' in the checkpoint, 'lsgan' asked"),
    (['--ema-decay', '0.99'], 'ema_decay 0.0 in the checkpoint, 0.99 asked'),
    (['--model', 'dcgan_lfw_128', '--image-size', '128'], 'model, image_size cannot change'),
    (['--batch-size', '4'], '8 images per worker and iteration, but this job has 1 worker(s) '
                            'with 4 (--batch-size 4 per device'),
])
def test_unchangeable_keys_on_resume_are_one_clear_error(run4, capsys, flags, words):
    before = snapshot(run4)
    line = one_line_error(capsys, train_script.main, ['--resume', str(run4)] + flags)
    assert words in line and ('; drop --' in line or 'resume with the same' in line)
    after = snapshot(run4)
    assert {k: v for k, v in after.items() if k != 'train.log'} == \
        {k: v for k, v in before.items() if k != 'train.log'}


def test_resume_with_nothing_left_to_train_says_so_and_exits_0(run4, capsys):
    final = (run4 / 'model.params').read_bytes()
    code, out, err = run_cli('gluoncv_gan.train', ['--resume', str(run4), '--iterations', '2'])
    assert code == 0, err
    assert 'nothing left to train: the run is at iteration 4' in out
    assert (run4 / 'model.params').read_bytes() == final
    assert [i for i, _ in checkpoints_of(run4)] == [2, 4]


# ---------------------------------------------------------------------------------------------
# 3. graceful stop
# ---------------------------------------------------------------------------------------------
def _popen(args):
    return subprocess.Popen([sys.executable, '-m', 'gluoncv_gan.train'] + args, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sigint_stops_with_a_checkpoint_and_the_resume_is_bit_identical(tmp_path):
    common = SMALL + ['--iterations', '24', '--log-interval', '1', '--checkpoint-interval', '0']
    whole = _popen(common + ['--save-dir', str(tmp_path / 'whole')])
    stopped = OutputReader(_popen(common + ['--save-dir', str(tmp_path / 'stopped')]))
    stopped.wait_for(' at iter 9 ', TIMEOUT)
    stopped.proc.send_signal(signal.SIGINT)
    out = stopped.finish(TIMEOUT)
    assert stopped.proc.returncode == 130, out
    assert 'Traceback' not in out and 'KeyboardInterrupt' not in out
    line = [x for x in out.splitlines() if 'stopped at iteration' in x][0]
    iteration = int(line.split('stopped at iteration ')[1].split(';')[0])
    command = line.split('resume with: ')[1].split()
    assert command == ['python', '-m', 'gluoncv_gan.train', '--resume', str(tmp_path / 'stopped')]
    assert 9 <= iteration < 24
    assert [i for i, _ in checkpoints_of(tmp_path / 'stopped')] == [iteration]
    assert not (tmp_path / 'stopped' / 'model.params').exists()  # the run is not finished
    resumed = subprocess.run([sys.executable] + command[1:], cwd=REPO, capture_output=True,
                             text=True, timeout=TIMEOUT)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    whole_out, _ = whole.communicate(timeout=TIMEOUT)
    assert whole.returncode == 0, whole_out
    assert_same_parameters(tmp_path / 'whole' / 'model.params',
                           tmp_path / 'stopped' / 'model.params')


def test_sigterm_stops_with_exit_143_and_a_checkpoint(tmp_path):
    run = OutputReader(_popen(SMALL + ['--iterations', '500', '--log-interval', '1',
                                       '--checkpoint-interval', '0',
                                       '--save-dir', str(tmp_path / 'run')]))
    run.wait_for(' at iter 3 ', TIMEOUT)
    run.proc.send_signal(signal.SIGTERM)
    out = run.finish(TIMEOUT)
    assert run.proc.returncode == 143, out
    assert 'stopped at iteration' in out and 'Traceback' not in out
    found = checkpoints_of(tmp_path / 'run')
    assert len(found) == 1 and ckpt.checkpoint_problem(found[0][1]) is None


def test_second_ctrl_c_aborts_at_once_and_leaves_whole_checkpoints(tmp_path):
    # wider nets: the iteration in progress lasts long enough for the second signal to land
    args = ['--dataset', 'lfw_sample', '--batch-size', '32', '--sample-interval', '0',
            '--iterations', '500', '--log-interval', '1', '--checkpoint-interval', '2',
            '--save-dir', str(tmp_path / 'run')]
    run = OutputReader(_popen(args))
    run.wait_for(' at iter 3 ', TIMEOUT)
    run.proc.send_signal(signal.SIGINT)
    run.wait_for('Received SIGINT', TIMEOUT)
    run.proc.send_signal(signal.SIGINT)
    out = run.finish(60)
    assert run.proc.returncode == -signal.SIGINT, out
    assert 'stopped at iteration' not in out
    for _, path in checkpoints_of(tmp_path / 'run'):
        assert ckpt.checkpoint_problem(path) is None


def test_launcher_forwards_ctrl_c_and_the_workers_checkpoint(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    command = [sys.executable, '-m', 'gluoncv_gan.launch', '-n', '2', '-s', '1', '--',
               sys.executable, '-m', 'gluoncv_gan.train', '--kvstore', 'dist_sync', '--iterations', '500',
               '--log-interval', '1', '--checkpoint-interval', '0',
               '--save-dir', str(tmp_path / 'run')] + SMALL
    job = OutputReader(subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True))
    lines = job.wait_for(' at iter 3 ', TIMEOUT)
    pids = [int(x.split('(pid ')[1].rstrip(')\n')) for x in lines if '(pid ' in x]
    job.proc.send_signal(signal.SIGINT)
    out = job.finish(TIMEOUT)
    assert job.proc.returncode == 130, out
    stops = [x for x in out.splitlines() if 'stopped at iteration' in x]
    assert len(stops) == 2, out  # both workers, at the same iteration
    iterations = {x.split('stopped at iteration ')[1].split(';')[0] for x in stops}
    assert len(iterations) == 1
    found = checkpoints_of(tmp_path / 'run')
    assert [str(i) for i, _ in found] == list(iterations)
    assert ckpt.checkpoint_problem(found[0][1]) is None
    assert 'gluoncv_gan.launch -n 2 -s 1 -- python -m gluoncv_gan.train --resume' in out
    assert len(pids) == 4 and not any(os.path.exists('/proc/%d' % pid) for pid in pids)


# ---------------------------------------------------------------------------------------------
# 4. checkpoint fallback
# ---------------------------------------------------------------------------------------------
def _truncate(path):
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


@pytest.mark.parametrize('damage, problem', [
    (lambda c: _truncate(os.path.join(c, 'state.json')), 'state.json does not parse'),
    (lambda c: _truncate(os.path.join(c, 'model.params')), 'model.params does not load'),
    (lambda c: os.remove(os.path.join(c, 'trainer_d.states')), 'missing trainer_d.states'),
])
def test_damaged_newest_checkpoint_falls_back_and_is_kept(run4, damage, problem):
    newest = str(run4 / 'checkpoints' / 'iter-00000004')
    damage(newest)
    damaged = snapshot(newest)
    train_script.main(['--resume', str(run4), '--iterations', '6'])
    log = (run4 / 'train.log').read_text()
    warning = [line for line in log.splitlines() if 'is damaged' in line][0]
    assert newest in warning and problem in warning
    assert 'Resumed from %s' % str(run4 / 'checkpoints' / 'iter-00000002') in log
    aside = [n for n in os.listdir(str(run4 / 'checkpoints')) if '.damaged-' in n]
    assert len(aside) == 1 and aside[0].startswith('iter-00000004.damaged-')
    assert snapshot(str(run4 / 'checkpoints' / aside[0])) == damaged  # kept as it was
    assert [i for i, _ in checkpoints_of(run4)][-1] == 6


def test_damaged_checkpoint_named_explicitly_is_an_error(run4, capsys):
    newest = str(run4 / 'checkpoints' / 'iter-00000004')
    _truncate(os.path.join(newest, 'state.json'))
    damaged = snapshot(newest)
    line = one_line_error(capsys, train_script.main, ['--resume', newest])
    assert 'is damaged' in line and '--resume %s' % run4 in line
    assert snapshot(newest) == damaged


# ---------------------------------------------------------------------------------------------
# 5. truncated images
# ---------------------------------------------------------------------------------------------
def test_truncated_jpeg_and_png_are_skipped_and_listed(tmp_path, caplog):
    folder = tmp_path / 'faces' / 'someone'
    folder.mkdir(parents=True)
    for path in sample_faces(6):
        shutil.copy(path, str(folder))
    jpeg = str(folder / sorted(os.listdir(str(folder)))[0])
    _truncate(jpeg)
    assert cv2.imread(jpeg) is not None  # OpenCV alone would take it for whole
    png = str(folder / 'cut.png')
    cv2.imwrite(png, cv2.imread(sample_faces(7)[-1]))
    _truncate(png)
    with caplog.at_level('WARNING'):
        data = FaceFolder(str(tmp_path / 'faces'), cache_dir=str(tmp_path / 'cache'))
    assert sorted(data.skipped) == sorted([jpeg, png])
    assert len(data) == 5
    for path, word in ((jpeg, 'truncated JPEG'), (png, 'truncated PNG')):
        assert any(path in r.getMessage() and word in r.getMessage() for r in caplog.records)
    with open(data.cache_path[:-4] + '.json') as f:
        meta = json.load(f)
    assert sorted(meta['skipped']) == ['someone/' + os.path.basename(jpeg), 'someone/cut.png']
    assert meta['skipped_reasons']['someone/cut.png'].startswith('truncated PNG')


# ---------------------------------------------------------------------------------------------
# 6. one-line errors
# ---------------------------------------------------------------------------------------------
def test_disk_full_while_writing_a_checkpoint(run4, capsys, monkeypatch):
    before = snapshot(run4 / 'checkpoints')

    def full(folder):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), folder)
    monkeypatch.setattr(ckpt, '_fsync_tree', full)
    line = one_line_error(capsys, train_script.main, ['--resume', str(run4), '--iterations', '6',
                                                      '--checkpoint-interval', '1'])
    assert line.startswith('error: No space left on device') and 'free some space' in line
    assert snapshot(run4 / 'checkpoints') == before  # no partial checkpoint, none pruned
    assert 'No space left on device' in (run4 / 'train.log').read_text()


def test_save_dir_or_log_file_under_a_regular_file(tmp_path, capsys):
    blocker = tmp_path / 'file'
    blocker.write_text('keep me')
    line = one_line_error(capsys, train_script.main,
                          SMALL + ['--iterations', '1', '--save-dir', str(blocker / 'run')])
    assert 'which is a file, not a folder' in line
    line = one_line_error(capsys, train_script.main,
                          SMALL + ['--iterations', '1', '--save-dir', str(tmp_path / 'run'),
                                   '--logging-file', str(blocker / 'train.log')])
    assert '--logging-file' in line and 'which is a file' in line
    assert blocker.read_text() == 'keep me'


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into read-only folders')
def test_save_dir_in_a_read_only_folder(tmp_path, capsys):
    locked = tmp_path / 'locked'
    locked.mkdir()
    locked.chmod(0o500)
    try:
        line = one_line_error(capsys, train_script.main,
                              SMALL + ['--iterations', '1', '--save-dir', str(locked / 'run')])
    finally:
        locked.chmod(0o700)
    assert 'cannot be written' in line and 'writable folder' in line


@pytest.mark.parametrize('files, words', [
    (3, 'the dataset has 3 images, fewer than one batch of 8'),
    (0, 'none of the images of dataset folder could be decoded'),
])
def test_too_small_or_undecodable_dataset(tmp_path, files, words):
    folder = tmp_path / 'faces' / 'someone'
    folder.mkdir(parents=True)
    for path in sample_faces(files):
        shutil.copy(path, str(folder))
    for i in range(3 if files == 0 else 0):
        (folder / ('not_an_image_%d.jpg' % i)).write_text('text')
    code, out, err = run_cli('gluoncv_gan.train', [
        '--dataset', 'folder', '--data-dir', str(tmp_path / 'faces'), '--batch-size', '8',
        '--ngf', '8', '--ndf', '8', '--nz', '16', '--save-dir', str(tmp_path / 'run')])
    assert code == 2, out + err
    assert err.strip().count('\n') == 0 and words in err
    assert 'Traceback' not in out + err and 'Exception ignored' not in out + err


def test_infinite_learning_rate_is_refused(tmp_path, capsys):
    config = tmp_path / 'inf.yaml'
    config.write_text('lr: .inf\n')
    line = one_line_error(capsys, train_script.main, ['--config', str(config), '--save-dir',
                                                      str(tmp_path / 'run')])
    assert "'lr' has the value inf" in line


@pytest.mark.skipif(mx.context.num_gpus() > 0, reason='needs an mxnet that has no GPU')
def test_gpu_on_a_cpu_only_mxnet(tmp_path, capsys):
    line = one_line_error(capsys, train_script.main, SMALL + ['--iterations', '1', '--gpus', '0',
                                                              '--save-dir', str(tmp_path / 'r')])
    assert 'GPU' in line and "--gpus ''" in line


def test_sample_output_errors(tmp_path, capsys):
    blocker = tmp_path / 'file'
    blocker.write_text('keep me')
    (tmp_path / 'folder.png').mkdir()
    for out, words in ((tmp_path / 'x.xyz', 'use .png or .jpg'),
                       (tmp_path / 'folder.png', 'is a folder; name a file inside it'),
                       (blocker / 'x.png', 'which is a file, not a folder')):
        line = one_line_error(capsys, sample.main, ['dcgan_lfw', '--num', '2', '--out', str(out)])
        assert words in line
    assert sorted(os.listdir(str(tmp_path))) == ['file', 'folder.png']
    assert os.listdir(str(tmp_path / 'folder.png')) == []


def test_evaluate_refuses_a_json_under_a_file_before_computing(tmp_path, capsys):
    blocker = tmp_path / 'file'
    blocker.write_text('keep me')
    fake = tmp_path / 'fake.npy'
    np.save(str(fake), np.zeros((12, 64, 64, 3), np.uint8))
    line = one_line_error(capsys, evaluate.main, ['--fake', str(fake), '--json',
                                                  str(blocker / 'r.json')])
    assert '--json' in line and 'which is a file' in line
    assert 'SWD' not in capsys.readouterr().out


def test_evaluate_refuses_an_npy_that_is_not_an_array(tmp_path, capsys):
    fake = tmp_path / 'objects.npy'
    np.save(str(fake), np.array([{'a': 1}], dtype=object), allow_pickle=True)
    line = one_line_error(capsys, evaluate.main, ['--fake', str(fake)])
    assert 'is not a readable .npy array' in line and '(N, H, H, 3)' in line


def test_benchmark_compare_and_report_refuse_bad_paths_in_one_line(tmp_path, capsys):
    from gluoncv_gan import benchmark, compare, report
    blocker = tmp_path / 'file'
    blocker.write_text('keep me')
    line = one_line_error(capsys, benchmark.main, ['--json', str(blocker / 'b.json')])
    assert '--json' in line and 'which is a file' in line  # before the benchmark ran
    line = one_line_error(capsys, compare.main, ['--recipes', 'configs/dcgan_lfw_sample.yaml',
                                                 '--images', '64', '--out-dir',
                                                 str(blocker / 'cmp')])
    assert '--out-dir' in line and 'which is a file' in line
    line = one_line_error(capsys, report.main, [str(tmp_path)])
    assert 'is not a run folder' in line
    assert os.listdir(str(tmp_path)) == ['file'] and blocker.read_text() == 'keep me'


def test_prepare_lfw_errors_exit_2_in_one_line(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('keep me')
    archive = tmp_path / 'lfw.tgz'
    archive.write_bytes(b'not a tar archive')
    for args, words in ((['--archive', str(archive), '--download-dir', str(blocker / 'lfw')],
                         'not a folder'),
                        (['--archive', str(tmp_path / 'missing.tgz'), '--download-dir',
                          str(tmp_path / 'lfw')], 'missing.tgz')):
        code, out, err = run_cli('gluoncv_gan.data.prepare_lfw', args + ['--no-progress'])
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and 'Traceback' not in err, err
        assert len(lines) == 1 and lines[0].startswith('error: ') and words in lines[0], err
    assert blocker.read_text() == 'keep me'


def test_debug_flag_and_variable_show_the_traceback(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('')
    args = SMALL + ['--iterations', '1', '--save-dir', str(blocker / 'run')]
    with pytest.raises(UserError):
        train_script.main(args + ['--debug'])
    env = dict(os.environ, **{DEBUG_VARIABLE: '1'})
    code, out, err = run_cli('gluoncv_gan.train', args, env=env)
    assert code == 1 and 'Traceback' in err and 'UserError' in err


def test_unexpected_exceptions_keep_their_traceback(monkeypatch):
    def broken(argv=None):
        raise RuntimeError('a bug')
    monkeypatch.setattr(train_script, 'parse_args', broken)
    with pytest.raises(RuntimeError, match='a bug'):
        train_script.main([])
