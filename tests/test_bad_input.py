"""Bad input to any command: one line ``error: ...``, exit code 2, no traceback, nothing lost.
Config files of any bytes, seeds, export's options, report's config, compare's Ctrl-C; and one
training run per run folder."""
import os
import signal
import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gluoncv_gan import compare, evaluate, export, report, sample
from gluoncv_gan import train as train_script
from gluoncv_gan.estimator import checkpoint as ckpt
from gluoncv_gan.utils.config import ConfigError, load_config, parse_config_text
from output_reader import OutputReader

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ['--dataset', 'lfw_sample', '--batch-size', '8', '--ngf', '4', '--ndf', '4', '--nz', '4',
        '--sample-interval', '0', '--no-hybridize']


def one_line_error(capsys, call, args):
    """Run ``call(args)`` expecting exit 2; return its single stderr line."""
    with pytest.raises(SystemExit) as info:
        call(args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith('error: '), err
    return lines[0]


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    """A finished 2-iteration run with a checkpoint at each iteration."""
    folder = tmp_path_factory.mktemp('bad_input') / 'run'
    train_script.main(TINY + ['--iterations', '2', '--checkpoint-interval', '1',
                              '--keep-checkpoints', '5', '--save-dir', str(folder)])
    return folder


# ---------------------------------------------------------------------------------------------
# config files
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize('content, words', [
    (b'# caf\xe9\nlr: 0.001\n', ['is not UTF-8 text (byte 0xe9 on line 1)', 'save it as UTF-8']),
    (b'\x00\x01\x02binary params', ['is not a text file']),
    (b'lr: 0.001\nbatch_size: [8\nnz: 4\n',
     ['is invalid YAML', "expected ',' or ']'", 'line 3, column']),
    (b'lr: 0.001\nseed: 1\nlr: 0.002\n', ["gives the key 'lr' twice (lines 1 and 3)"]),
    (b'- lr\n- 0.001\n', ['must hold a mapping of keys to values', 'not a list']),
    (b'just words\n', ['must hold a mapping of keys to values', 'not a string']),
])
def test_a_config_file_that_cannot_be_read_is_named_in_one_line(tmp_path, capsys, content,
                                                               words):
    config = tmp_path / 'bad.yaml'
    config.write_bytes(content)
    line = one_line_error(capsys, train_script.main,
                          ['--config', str(config), '--save-dir', str(tmp_path / 'run')])
    assert str(config) in line
    for word in words:
        assert word in line, line
    assert not (tmp_path / 'run').exists()


def test_numbers_written_like_2e_4_are_numbers_for_float_keys():
    config = parse_config_text(b'lr: 2e-4\nlr_d: 1E-3\nbeta1: "0.5"\n', 'c.yaml')
    assert config['lr'] == '2e-4'  # YAML 1.1 reads it as a string...
    resolved = load_config(None, config)
    assert resolved['lr'] == 2e-4 and resolved['lr_d'] == 1e-3 and resolved['beta1'] == 0.5
    with pytest.raises(ConfigError, match="'lr' has the value 'fast'"):
        load_config(None, {'lr': 'fast'})
    with pytest.raises(ConfigError, match="'batch_size' has the value '64'"):
        load_config(None, {'batch_size': '64'})  # not a float key: still refused


# ---------------------------------------------------------------------------------------------
# seeds: 0 <= seed < 2**32, checked in one place for every command
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize('seed', ['-1', '4294967296'])
def test_every_command_refuses_a_seed_numpy_cannot_take(tmp_path, capsys, seed):
    line = one_line_error(capsys, train_script.main,
                          TINY + ['--seed', seed, '--save-dir', str(tmp_path / 'run')])
    assert "'seed' has the value %s; allowed: an integer from 0 to 4294967295" % seed in line
    from gluoncv_gan import benchmark
    commands = [(sample.main, ['dcgan_lfw', '--out', str(tmp_path / 'x.png')]),
                (evaluate.main, ['dcgan_lfw', '--pretrained']), (benchmark.main, []),
                (compare.main, ['--recipes', 'configs/dcgan_lfw_sample.yaml', '--images', '64',
                                '--out-dir', str(tmp_path / 'cmp')])]
    for main, args in commands:
        with pytest.raises(SystemExit) as info:
            main(args + ['--seed', seed])
        err = capsys.readouterr().err
        assert info.value.code == 2 and 'Traceback' not in err
        assert ("'%s' is not a seed; allowed: an integer from 0 to 4294967295" % seed) in err
    assert os.listdir(str(tmp_path)) == []
    load_config(None, {'seed': 2 ** 32 - 1})  # the largest one is fine


# ---------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize('average', ['-1', '0'])
def test_export_refuses_an_average_below_one(run, tmp_path, capsys, average):
    line = one_line_error(capsys, export.main, [str(run), '--average', average,
                                                '--out-dir', str(tmp_path / 'out')])
    assert '--average %s' % average in line and '1 or more' in line
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('name, extra', [('sngan_lfw', []), ('dcgan_lfw_128', ['--format',
                                                                              'symbol'])])
def test_export_names_both_architectures_when_name_does_not_fit_the_run(run, tmp_path, capsys,
                                                                       name, extra):
    line = one_line_error(capsys, export.main, [str(run), '--name', name, '--out-dir',
                                                str(tmp_path / 'out')] + extra)
    assert 'holds a dcgan_lfw pair (64x64 images, BatchNorm discriminator)' in line
    assert '%s is another architecture' % name in line
    assert not (tmp_path / 'out').exists()


def test_export_of_a_run_with_a_damaged_best_json_takes_the_latest(run, tmp_path, caplog):
    best = run / 'best.json'
    best.write_text('{"checkpoint": "/some/where/iter-000')  # cut short
    try:
        with caplog.at_level('WARNING'):
            sha1, zip_path = export.main([str(run), '--out-dir', str(tmp_path / 'out')])
    finally:
        best.unlink()
    assert 'best.json is damaged' in caplog.text and 'exporting the latest checkpoint' in \
        caplog.text
    assert os.path.isfile(zip_path)


# ---------------------------------------------------------------------------------------------
# report and compare
# ---------------------------------------------------------------------------------------------
def test_report_names_an_unreadable_config(tmp_path, capsys):
    folder = tmp_path / 'run'
    folder.mkdir()
    (folder / 'config.yaml').write_text('model: dcgan_lfw\n  lr: [1\n')
    line = one_line_error(capsys, report.main, [str(folder)])
    assert 'config.yaml is invalid YAML' in line and 'line ' in line
    assert os.listdir(str(folder)) == ['config.yaml']


def test_compare_stops_on_ctrl_c_with_130_and_the_command_that_resumes(tmp_path):
    recipe = tmp_path / 'tiny.yaml'
    recipe.write_text('dataset: lfw_sample\nngf: 4\nndf: 4\nnz: 4\nbatch_size: 8\n'
                      'log_interval: 1\nsample_interval: 0\nhybridize: false\n')
    command = [sys.executable, '-m', 'gluoncv_gan.compare', '--recipes', str(recipe), '--images',
               '800000', '--eval-samples', '10', '--out-dir', str(tmp_path / 'cmp')]
    job = OutputReader(subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True))
    job.wait_for(' at iter 3 ', timeout=120)
    job.proc.send_signal(signal.SIGINT)
    out = job.finish(timeout=120)
    assert job.proc.returncode == 130, out
    assert 'Traceback' not in out
    assert 'resume with: python -m gluoncv_gan.compare --recipes %s' % recipe in out
    assert ckpt.list_checkpoints(str(tmp_path / 'cmp' / 'tiny' / 'checkpoints'))


# ---------------------------------------------------------------------------------------------
# one run per folder
# ---------------------------------------------------------------------------------------------
def _train(args):
    return subprocess.Popen([sys.executable, '-m', 'gluoncv_gan.train'] + args, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_second_run_in_a_busy_folder_is_refused_and_a_killed_ones_lock_does_not_block(
        tmp_path):
    folder = tmp_path / 'run'
    first = OutputReader(_train(TINY + ['--iterations', '100000', '--log-interval', '1',
                                        '--checkpoint-interval', '2', '--seed', '1',
                                        '--save-dir', str(folder)]))
    first.wait_for(' at iter 3 ', timeout=120)
    for args in (TINY + ['--seed', '2', '--save-dir', str(folder)], ['--resume', str(folder)]):
        second = subprocess.run([sys.executable, '-m', 'gluoncv_gan.train'] + args, cwd=REPO,
                                capture_output=True, text=True, timeout=120)
        lines = [line for line in second.stderr.splitlines() if line.strip()]
        assert second.returncode == 2 and len(lines) == 1, second.stderr
        assert lines[0] == ('error: %s is in use by another training run (pid %d): wait for it to '
                            'end or stop it (kill -INT %d, it saves a checkpoint), or choose '
                            'another --save-dir' % (folder, first.proc.pid, first.proc.pid))
    assert yaml.safe_load((folder / 'config.yaml').read_text())['seed'] == 1
    first.proc.send_signal(signal.SIGKILL)
    first.finish(timeout=60)
    resumed = subprocess.run([sys.executable, '-m', 'gluoncv_gan.train', '--resume', str(folder),
                              '--iterations', '4'], cwd=REPO, capture_output=True, text=True,
                             timeout=180)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert 'Resumed from' in resumed.stdout


def test_sample_and_export_read_a_run_while_it_trains(tmp_path):
    """A run that writes a checkpoint every iteration and keeps only the newest: the commands
    that read it always find a whole checkpoint, and the one they load is not deleted under
    them."""
    folder = tmp_path / 'run'
    training = OutputReader(_train(TINY + ['--iterations', '100000', '--log-interval', '1',
                                           '--checkpoint-interval', '1', '--keep-checkpoints',
                                           '1', '--save-dir', str(folder)]))
    try:
        training.wait_for(' at iter 3 ', timeout=120)
        from gluoncv_gan.pipeline.generator import load_generator
        for _ in range(100):  # checkpoints come and go meanwhile
            load_generator('dcgan_lfw', params=str(folder))
        for attempt in range(3):
            sample.main(['dcgan_lfw', '--params', str(folder), '--num', '4',
                         '--out', str(tmp_path / ('s%d.png' % attempt))])
            export.main([str(folder), '--format', 'symbol', '--out-dir',
                         str(tmp_path / ('e%d' % attempt))])
        assert training.proc.poll() is None  # it trained all along
    finally:
        training.proc.send_signal(signal.SIGINT)
        out = training.finish(timeout=120)
    assert training.proc.returncode == 130, out
    assert all((tmp_path / ('s%d.png' % a)).is_file() for a in range(3))


def test_pruning_waits_for_a_reader_of_the_checkpoint(run):
    """A reader holding the guard keeps its checkpoint; training deletes it once it is done."""
    import threading
    folder = str(run / 'checkpoints')
    oldest = ckpt.list_checkpoints(folder)[0][1]
    pruned = threading.Event()

    def prune():
        ckpt.prune_checkpoints(folder, keep=1)
        pruned.set()
    with ckpt.reading_checkpoints(str(run)):
        pruner = threading.Thread(target=prune, daemon=True)
        pruner.start()
        assert not pruned.wait(1.0)  # blocked while the checkpoint is read
        assert os.path.isfile(os.path.join(oldest, 'model.params'))
    assert pruned.wait(30)
    assert not os.path.exists(oldest) and len(ckpt.list_checkpoints(folder)) == 1


# ---------------------------------------------------------------------------------------------
# fuzzing: any YAML mapping, any bytes as a config file
# ---------------------------------------------------------------------------------------------
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                     st.text(max_size=12), st.sampled_from(['2e-4', '1e400', 'nan', '-0', '']))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
_KEYS = st.one_of(st.sampled_from(sorted(load_config()) + ['lr ', 'Seed']), st.text(max_size=8))


def _clean_or_valid(data):
    """A config file's bytes give a valid config or one ConfigError of one line."""
    try:
        config = load_config(None, parse_config_text(data, 'fuzz.yaml'))
    except ConfigError as err:
        assert str(err) and '\n' not in str(err)
        return None
    assert set(config) == set(load_config())
    return config


@settings(max_examples=150, deadline=2000, derandomize=True)
@given(st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_any_yaml_mapping_gives_a_valid_config_or_one_clean_error(mapping):
    _clean_or_valid(yaml.safe_dump(mapping, allow_unicode=True).encode('utf-8'))


@settings(max_examples=150, deadline=2000, derandomize=True)
@given(st.one_of(st.binary(max_size=300),
                 st.text(max_size=200).map(lambda t: t.encode('utf-8')),
                 st.lists(st.sampled_from([b'lr: ', b'2e-4', b'\n', b'seed: ', b'[', b']', b'{',
                                           b'}', b'&a ', b'*a', b'- ', b': ', b'"', b'!!', b'\t',
                                           b'? ', b'%YAML 1.1\n', b'---\n', b'\xe9', b'#']),
                          max_size=30).map(b''.join)))
def test_any_bytes_as_a_config_file_give_a_valid_config_or_one_clean_error(data):
    _clean_or_valid(data)


@settings(max_examples=20, deadline=10000, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_train_with_any_bytes_as_config_never_shows_a_traceback(tmp_path, capsys, data):
    config = tmp_path / 'fuzz.yaml'
    config.write_bytes(data)
    try:
        load_config(None, parse_config_text(data, str(config)))
    except ConfigError:
        line = one_line_error(capsys, train_script.main,
                              ['--config', str(config), '--save-dir', str(tmp_path / 'run')])
        assert str(config) in line or 'config key' in line


def test_resuming_a_folder_that_does_not_exist_creates_nothing(tmp_path, capsys):
    line = one_line_error(capsys, train_script.main, ['--resume', str(tmp_path / 'typo')])
    assert 'no checkpoint found at %s' % (tmp_path / 'typo') in line
    assert os.listdir(str(tmp_path)) == []
