"""Tests of the evaluation CLI, ``python -m gluoncv_gan.evaluate``, run in-process."""
import json
import os

import cv2
import numpy as np
import pytest

from gluoncv_gan import evaluate, train
from gluoncv_gan.data import LFWSample
from gluoncv_gan.model_zoo import get_model, pretrained_model_list
from gluoncv_gan.pipeline.evaluation import load_images, other_real, split_real
from gluoncv_gan.pipeline.generator import load_generator
from gluoncv_gan.utils.image import make_grid, save_image, to_uint8_images

NUM = 40  # --num-samples of every run: small sets keep each evaluation near a second
KEYS = {'swd', 'swd_levels', 'face_rate', 'face_rate_real', 'diversity', 'diversity_real',
        'memorization', 'sharpness', 'laplacian_energy', 'laplacian_energy_real', 'settings',
        'counts', 'timings'}
SMALL = dict(nz=16, ngf=8, ndf=8)  # the widths of the tiny training run


@pytest.fixture(scope='module')
def home(tmp_path_factory):
    """One MXNET_HOME for the module, so the bundled sample is decoded into its cache once."""
    return str(tmp_path_factory.mktemp('evaluate_home'))


@pytest.fixture(autouse=True)
def shared_home(home, mxnet_home, monkeypatch):
    """Replace conftest's per-test MXNET_HOME by the module's (still a temporary folder)."""
    monkeypatch.setenv('MXNET_HOME', home)


@pytest.fixture(scope='module')
def faces(home):
    """The bundled faces, uint8 (300, 64, 64, 3)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('MXNET_HOME', home)
        return np.asarray(LFWSample().images)


@pytest.fixture(scope='module')
def noise():
    """NUM images of uniform noise, uint8 (NUM, 64, 64, 3): nothing like a face."""
    return np.random.RandomState(0).randint(0, 256, (NUM, 64, 64, 3)).astype(np.uint8)


@pytest.fixture(scope='module')
def pair_file(tmp_path_factory):
    """A saved dcgan_lfw pair (default widths, random weights) and the net that saved it."""
    net = get_model('dcgan_lfw')
    path = str(tmp_path_factory.mktemp('pair') / 'dcgan.params')
    net.save_parameters(path)
    return path, net


@pytest.fixture(scope='module')
def run(tmp_path_factory, home):
    """A two-iteration training run of narrow networks on the sample, with a generator EMA."""
    folder = str(tmp_path_factory.mktemp('runs') / 'tiny')
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('MXNET_HOME', home)
        train.main(['--dataset', 'lfw_sample', '--batch-size', '8', '--nz', '16', '--ngf', '8',
                    '--ndf', '8', '--iterations', '2', '--ema-decay', '0.5',
                    '--save-dir', folder])
    return folder


def comparable(result):
    """The result without its timings (the only part that may change between identical runs)."""
    out = {k: v for k, v in result.items() if k not in ('timings', 'total_seconds')}
    out['settings'] = {k: v for k, v in result['settings'].items() if k != 'generate_seconds'}
    return out


def expected_grid(net, seed=0):
    """The grid that ``--grid`` should hold for ``net``'s first NUM images of ``seed``."""
    return make_grid(to_uint8_images(net.generate(NUM, seed=seed)))


def read_rgb(path):
    return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# ----------------------------------------------------------------------------
# Ready-made images (--fake)
# ----------------------------------------------------------------------------
def test_fake_npy_writes_every_metric_to_json_and_a_grid(tmp_path, noise, capsys):
    fake = str(tmp_path / 'noise.npy')
    np.save(fake, noise)
    out, grid = str(tmp_path / 'metrics.json'), str(tmp_path / 'grid.png')
    result = evaluate.main(['--fake', fake, '--real', 'lfw_sample', '--num-samples', str(NUM),
                            '--json', out, '--grid', grid])
    with open(out) as f:
        written = json.load(f)
    assert KEYS <= set(written)
    assert written == json.loads(json.dumps(result))
    assert written['settings'] == {'fake': fake, 'real': 'lfw_sample', 'seed': 0,
                                   'resolution': 64, 'num_samples': NUM,
                                   'metrics': ['swd', 'face', 'diversity', 'memorization',
                                               'sharpness']}
    assert written['counts'] == {'fake': NUM, 'real_reference': NUM,
                                 'real_memorization_reference': 300 - NUM}
    assert len(written['swd_levels']) == 3 and written['swd_resolutions'] == [64, 32, 16]
    assert set(written['timings']) >= {'swd', 'face_rate', 'diversity', 'memorization',
                                       'sharpness'}
    # noise against real faces: no faces found, far in SWD, about as diverse as noise can be
    assert written['face_rate'] == 0.0 and written['face_rate_real'] > 0.8
    assert written['swd'] > 100
    assert written['diversity'] == pytest.approx(np.sqrt(1 / 6), abs=0.01)
    assert written['memorization']['copied_fraction'] == 0.0
    assert written['sharpness'] > 10  # uniform noise: far more fine detail than faces
    np.testing.assert_array_equal(read_rgb(grid), make_grid(noise))
    assert 'face-detection rate' in capsys.readouterr().out


def test_a_folder_of_pngs_is_read_exactly_and_evaluated(tmp_path, faces):
    images = faces[::7][:NUM]
    folder = tmp_path / 'pngs' / 'nested'
    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        save_image(str(folder / ('%03d.png' % i)), image)
    np.testing.assert_array_equal(load_images(str(tmp_path / 'pngs'), 64), images)
    result = evaluate.main(['--fake', str(tmp_path / 'pngs'), '--real', 'lfw_sample',
                            '--num-samples', str(NUM)])
    assert KEYS <= set(result)
    assert result['counts']['fake'] == NUM and result['settings']['resolution'] == 64
    # these fakes are real faces: found as faces, and flagged as copies of the real set
    assert result['face_rate'] > 0.8
    assert not result['memorization']['passed']


# ----------------------------------------------------------------------------
# A model with weights (--params)
# ----------------------------------------------------------------------------
def test_params_of_a_saved_pair_are_the_weights_evaluated(tmp_path, pair_file):
    path, net = pair_file
    grid = str(tmp_path / 'grid.png')
    result = evaluate.main(['dcgan_lfw', '--params', path, '--num-samples', str(NUM),
                            '--grid', grid])
    assert KEYS <= set(result)
    assert result['settings']['model'] == 'dcgan_lfw'
    assert result['settings']['params'] == path and result['settings']['pretrained'] is False
    assert result['counts']['fake'] == NUM
    np.testing.assert_array_equal(read_rgb(grid), expected_grid(net))


def test_same_seed_gives_the_same_numbers_and_another_seed_others(run):
    argv = ['dcgan_lfw', '--params', run, '--num-samples', '20']
    first = evaluate.main(argv + ['--seed', '3'])
    again = evaluate.main(argv + ['--seed', '3'])
    other = evaluate.main(argv + ['--seed', '4'])
    assert comparable(first) == comparable(again)
    assert other['swd_levels'] != first['swd_levels']
    assert other['diversity'] != first['diversity']


def run_net(run, ema=False):
    """The narrow pair of the tiny run, loaded by hand (the EMA generator with ``ema``)."""
    net = get_model('dcgan_lfw', **SMALL)
    if ema:
        from gluoncv_gan.estimator.ema import recalibrate_batchnorm
        net.generator.load_parameters(os.path.join(run, 'generator_ema.params'))
        recalibrate_batchnorm(net.generator, net.nz)
    else:
        net.load_parameters(os.path.join(run, 'model.params'))
    return net


def test_a_run_folder_of_narrow_networks_is_evaluated_with_its_widths(tmp_path, run):
    grid = str(tmp_path / 'grid.png')
    result = evaluate.main(['dcgan_lfw', '--params', run, '--num-samples', str(NUM),
                            '--grid', grid])
    assert KEYS <= set(result)
    assert result['settings']['params'] == run and result['settings']['ema'] is False
    np.testing.assert_array_equal(read_rgb(grid), expected_grid(run_net(run)))


@pytest.mark.parametrize('where, ema', [
    ('checkpoints/iter-00000002', False),  # checkpoint folder: widths from state.json
    ('model.params', False),               # the file of a run folder: config.yaml beside it
    ('', True),                            # a run folder with --ema: generator_ema.params
    ('checkpoints/iter-00000002', True),   # a checkpoint's generator_ema.params
])
def test_load_generator_finds_the_weights_and_widths(run, where, ema):
    net = load_generator('dcgan_lfw', params=os.path.join(run, where), ema=ema)
    got = to_uint8_images(net.generate(8, seed=1))
    np.testing.assert_array_equal(got, to_uint8_images(run_net(run, ema).generate(8, seed=1)))
    # the EMA generator differs from the trained one, so the test sees which file was loaded
    other = to_uint8_images(run_net(run, not ema).generate(8, seed=1))
    assert not np.array_equal(got, other)


# ----------------------------------------------------------------------------
# Errors: a message naming the problem, no traceback
# ----------------------------------------------------------------------------
def exit_message(argv, capsys):
    """Run the CLI expecting it to exit; return its message (argparse's goes to stderr)."""
    with pytest.raises(SystemExit) as info:
        evaluate.main(argv)
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    code = info.value.code
    if isinstance(code, str):
        return code
    assert code == 2  # argparse usage error
    return err


@pytest.mark.parametrize('argv, message', [
    (['dcgan_lfw', '--params', 'x.params', '--fake', 'x.npy'], 'only one of'),
    (['--fake', 'x.npy', '--real-floor'], 'only one of'),
    (['--real-floor', '--size', '8'], '--size must be at least 16'),
    (['--num-samples', '40'], 'give a model name'),
    (['--fake', '{tmp}/missing.npy'], 'missing.npy does not exist'),
    (['--fake', '{tmp}/empty'], 'no readable image'),
    (['dcgan_lfw', '--params', '{tmp}/missing.params'], 'missing.params do not exist'),
    (['dcgan_lfw', '--params', '{tmp}/narrow.params'], 'shape incompatible'),
    (['dcgan_lfw_128', '--params', '{run}'], 'holds weights of dcgan_lfw, not dcgan_lfw_128'),
    (['dcgan_lfw', '--params', '{tmp}/empty'], 'no checkpoint'),
])
def test_bad_arguments_exit_with_a_message(tmp_path, run, capsys, argv, message):
    (tmp_path / 'empty').mkdir()
    get_model('dcgan_lfw', **SMALL).save_parameters(str(tmp_path / 'narrow.params'))
    argv = [a.format(tmp=tmp_path, run=run) for a in argv]
    assert message in exit_message(argv, capsys)


def test_wrong_dtype_npy_names_the_expected_layout(tmp_path, capsys):
    path = str(tmp_path / 'float.npy')
    np.save(path, np.zeros((12, 64, 64, 3), np.float32))
    message = exit_message(['--fake', path], capsys)
    assert message.startswith('error: ') and path in message
    assert 'uint8' in message and '(N, H, H, 3)' in message


def test_real_floor_measures_other_real_images_against_the_reference_set(tmp_path, faces):
    out = str(tmp_path / 'floor.json')
    result = evaluate.main(['--real-floor', '--size', '32', '--num-samples', str(NUM),
                            '--seed', '3', '--json', out])
    assert result['settings']['resolution'] == 32 and result['swd_resolutions'][0] == 32
    assert result['counts']['fake'] == result['counts']['real_reference'] == NUM
    with open(out) as f:
        assert json.load(f)['swd'] == pytest.approx(result['swd'])
    # the "fake" images are real faces outside the reference set, so every one of them is a copy
    # of an image in the memorisation check's training reference
    assert result['memorization']['copied_fraction'] == 1.0 and not result['memorization']['passed']
    # the same draw again, and a different reference and draw with another seed
    again = evaluate.main(['--real-floor', '--size', '32', '--num-samples', str(NUM), '--seed', '3'])
    other = evaluate.main(['--real-floor', '--size', '32', '--num-samples', str(NUM), '--seed', '4'])
    assert again['swd'] == result['swd'] and other['swd'] != result['swd']


def test_size_downscales_samples_as_a_smaller_file_of_them_would_be_measured(tmp_path, capsys):
    big = np.random.RandomState(1).randint(0, 256, (NUM, 128, 128, 3)).astype(np.uint8)
    small = np.stack([cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA) for img in big])
    np.save(str(tmp_path / 'big.npy'), big)
    np.save(str(tmp_path / 'small.npy'), small)
    at_64 = evaluate.main(['--fake', str(tmp_path / 'big.npy'), '--size', '64',
                           '--num-samples', str(NUM)])
    direct = evaluate.main(['--fake', str(tmp_path / 'small.npy'), '--num-samples', str(NUM)])
    assert at_64['settings']['resolution'] == 64 and at_64['swd_resolutions'] == [64, 32, 16]
    assert at_64['swd'] == direct['swd'] and at_64['diversity'] == direct['diversity']
    message = exit_message(['--fake', str(tmp_path / 'small.npy'), '--size', '128'], capsys)
    assert message.startswith('error: --size 128 is larger than the 64x64 images')


def test_other_real_draws_from_the_rest_only_and_refuses_too_few():
    real = np.arange(100, dtype=np.uint8).reshape(100, 1, 1, 1)
    reference, rest = split_real(real, 30, seed=0)
    other = other_real(rest, 30, seed=0)
    assert len(other) == 30 and not set(other.ravel()) & set(reference.ravel())
    assert set(other.ravel()) <= set(rest.ravel())
    with pytest.raises(ValueError, match='lower --num-samples to at most 70'):
        other_real(rest, 71, seed=0)


def test_pretrained_exits_saying_no_weights_are_published(capsys, monkeypatch):
    from gluoncv_gan.model_zoo import model_store
    unpublished = [v for v in model_store._model_sha1_versions if v[1] != 'dcgan_lfw_128']
    monkeypatch.setattr(model_store, '_model_sha1_versions', unpublished)
    assert 'dcgan_lfw_128' not in pretrained_model_list()
    message = exit_message(['dcgan_lfw_128', '--pretrained', '--num-samples', str(NUM)], capsys)
    assert message.startswith('error: No pretrained weights are published for')


# ----------------------------------------------------------------------------
# Training's evaluation and the command measure alike
# ----------------------------------------------------------------------------
def test_training_evaluation_gives_the_evaluate_commands_figures(tmp_path, faces, pair_file):
    """EvaluationHandler's metrics of its generated images equal those of
    ``python -m gluoncv_gan.evaluate --fake`` on the same images, real images and seed."""
    import types

    import mxnet as mx

    from gluoncv_gan.estimator import EvaluationHandler
    from gluoncv_gan.pipeline.evaluation import GeneratorEvaluation
    net = pair_file[1]
    seed = 5
    handler = EvaluationHandler(str(tmp_path), GeneratorEvaluation(faces, NUM, seed=seed),
                                checkpoints=None, num_samples=NUM)
    estimator = types.SimpleNamespace(sampling_generator=net.generator, nz=net.nz,
                                      context=[mx.cpu()])
    in_training = handler.evaluate(estimator)

    # the same latents drawn independently of the library: RandomState([seed, 0xEA])
    z = np.random.RandomState([seed, 0xEA]).standard_normal((NUM, net.nz, 1, 1))
    fake = to_uint8_images(net.generator(mx.nd.array(z, dtype='float32')))
    np.save(str(tmp_path / 'fake.npy'), fake)
    np.save(str(tmp_path / 'real.npy'), faces)
    by_command = evaluate.main(['--fake', str(tmp_path / 'fake.npy'), '--real',
                                str(tmp_path / 'real.npy'), '--num-samples', str(NUM),
                                '--seed', str(seed)])
    assert by_command['counts']['real_reference'] == NUM  # the same real subset size
    assert set(in_training) == {'swd', 'swd_levels', 'face_rate', 'diversity', 'sharpness'}
    for key in in_training:
        np.testing.assert_allclose(in_training[key], by_command[key], rtol=1e-6, err_msg=key)
