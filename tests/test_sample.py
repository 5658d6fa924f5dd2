"""The sampling script: grids, raw .npy images, latent walks, weights sources and errors."""
import json
import os
import shutil

import cv2
import mxnet as mx
import numpy as np
import pytest

from gluoncv_gan import sample
from gluoncv_gan.export import export_pair
from gluoncv_gan.model_zoo import get_model, model_store
from gluoncv_gan.pipeline.sampling import sample_images
from gluoncv_gan.sample import interpolation_latents, slerp
from gluoncv_gan.utils.image import make_grid, to_uint8_images

NAME = 'dcgan_lfw'
SIZE = 64


@pytest.fixture(scope='session')
def weights(tmp_path_factory):
    """A default-size dcgan_lfw pair with weights large enough for images spanning [0, 255]
    (the usual N(0, 0.02) start gives flat grey), saved as a ``model.params``, a checkpoint
    folder and a run folder; a second generator is the run's moving average."""
    base = tmp_path_factory.mktemp('sample_weights')
    net = get_model(NAME)
    net.initialize(mx.init.Normal(0.05), force_reinit=True)
    params = str(base / 'model.params')
    net.save_parameters(params)
    ema = get_model(NAME)
    ema.initialize(mx.init.Normal(0.05), force_reinit=True)
    config = {'model': NAME, 'nz': net.nz, 'ngf': net.generator.ngf,
              'ndf': net.discriminator.ndf}
    run = base / 'run'
    for iteration in (1, 2):  # the latest (2) holds ``net``; 1 holds other weights
        ckpt = run / 'checkpoints' / ('iter-%08d' % iteration)
        ckpt.mkdir(parents=True)
        (ckpt / 'state.json').write_text(json.dumps({'iteration': iteration, 'config': config}))
        if iteration == 2:
            shutil.copy(params, str(ckpt / 'model.params'))
            ema.generator.save_parameters(str(ckpt / 'generator_ema.params'))
        else:
            ema.save_parameters(str(ckpt / 'model.params'))
    return {'net': net, 'ema': ema, 'params': params, 'run': str(run),
            'checkpoint': str(run / 'checkpoints' / 'iter-00000002')}


def _run(*argv):
    return sample.main([NAME] + [str(a) for a in argv])


def _read_png(path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# --------------------------------------------------------------------------------------------
# grids and .npy
# --------------------------------------------------------------------------------------------
def test_grid_of_16_has_the_right_pixel_size(weights, tmp_path):
    out = tmp_path / 'faces.png'
    images = _run('--params', weights['params'], '--num', 16, '--out', out)
    assert images.shape == (16, SIZE, SIZE, 3)
    side = 2 + 4 * (SIZE + 2)  # 4 x 4 images, 2 px padding between and around
    grid = _read_png(out)
    assert grid.shape == (side, side, 3)
    np.testing.assert_array_equal(grid, make_grid(images))


def test_same_seed_gives_the_same_file(weights, tmp_path):
    paths = [tmp_path / name for name in ('a.png', 'b.png', 'c.png')]
    for path, seed in zip(paths, (5, 5, 6)):
        _run('--params', weights['params'], '--num', 4, '--seed', seed, '--out', path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_npy_holds_the_generators_images_as_uint8(weights, tmp_path):
    out = tmp_path / 'fake.npy'
    _run('--params', weights['params'], '--num', 5, '--seed', 3, '--format', 'npy', '--out', out)
    images = np.load(str(out))
    assert images.dtype == np.uint8 and images.shape == (5, SIZE, SIZE, 3)
    expected = to_uint8_images(weights['net'].generate(5, seed=3))
    np.testing.assert_array_equal(images, expected)
    assert len(np.unique(images)) > 100  # real images, not flat grey
    # the grid shows the same selection
    grid_path = tmp_path / 'grid.png'
    _run('--params', weights['params'], '--num', 5, '--seed', 3, '--out', grid_path)
    np.testing.assert_array_equal(_read_png(grid_path), make_grid(images))
    assert [p for p in os.listdir(str(tmp_path)) if p.endswith('.tmp')] == []


def test_format_follows_the_out_extension(weights, tmp_path):
    out = tmp_path / 'fake.npy'
    _run('--params', weights['params'], '--num', 2, '--out', out)
    assert np.load(str(out)).shape == (2, SIZE, SIZE, 3)


# --------------------------------------------------------------------------------------------
# latent walks
# --------------------------------------------------------------------------------------------
def test_slerp_keeps_the_norm_between_the_endpoints_norms():
    rs = np.random.RandomState(0)
    a, b = rs.standard_normal(100) * 0.5, rs.standard_normal(100) * 2.0
    t = np.linspace(0, 1, 11)
    path = slerp(a[None], b[None], t)
    norms = np.linalg.norm(path, axis=-1)
    low, high = sorted([np.linalg.norm(a), np.linalg.norm(b)])
    assert np.all(norms >= low * (1 - 1e-12)) and np.all(norms <= high * (1 + 1e-12))
    # the length moves linearly; a straight line would dip below both endpoints' norms
    np.testing.assert_allclose(norms, (1 - t) * np.linalg.norm(a) + t * np.linalg.norm(b))
    # endpoints exactly, and the direction turns at constant angular speed
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_array_equal(path[-1], b)
    unit = path / norms[:, None]
    angles = np.arccos(np.clip(np.sum(unit[:-1] * unit[1:], axis=-1), -1, 1))
    np.testing.assert_allclose(angles, angles[0], rtol=1e-6)
    # equal norms stay on the sphere
    c = b / np.linalg.norm(b) * np.linalg.norm(a)
    np.testing.assert_allclose(np.linalg.norm(slerp(a[None], c[None], t), axis=-1),
                               np.linalg.norm(a))


def test_slerp_edge_cases():
    a = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(slerp(a, 2 * a, 0.5), 1.5 * a)  # parallel: no NaN
    with pytest.raises(ValueError, match='opposite directions'):
        slerp(a, -a, 0.5)
    with pytest.raises(ValueError, match='zero latent vector'):
        slerp(a, np.zeros(3), 0.5)
    with pytest.raises(ValueError, match=r't must be in \[0, 1\]'):
        slerp(a, a[::-1], 1.5)


def test_interpolate_endpoints_are_the_endpoint_latents_images(weights, tmp_path):
    net, rows, steps, seed = weights['net'], 3, 5, 7
    out = tmp_path / 'walk.npy'
    images = _run('--params', weights['params'], '--interpolate', '--rows', rows, '--steps',
                  steps, '--seed', seed, '--out', out)
    assert images.shape == (rows * steps, SIZE, SIZE, 3)
    np.testing.assert_array_equal(np.load(str(out)), images)
    starts, ends = np.random.RandomState(seed).standard_normal((2, rows, net.nz))
    for latents, column in ((starts, 0), (ends, steps - 1)):
        z = latents.reshape(rows, net.nz, 1, 1).astype(np.float32)
        expected = sample_images(net.generator, z)
        np.testing.assert_array_equal(images[column::steps], expected)
    # in between, the images change along the walk
    assert not np.array_equal(images[1], images[0]) and not np.array_equal(images[1], images[4])
    z = interpolation_latents(net.nz, rows, steps, seed).reshape(rows, steps, net.nz)
    norms = np.linalg.norm(z, axis=-1)
    assert np.all(norms >= norms[:, [0, -1]].min(1, keepdims=True) - 1e-4)
    assert np.all(norms <= norms[:, [0, -1]].max(1, keepdims=True) + 1e-4)


def test_interpolate_grid_has_one_walk_per_row(weights, tmp_path):
    out = tmp_path / 'walk.png'
    images = _run('--params', weights['params'], '--interpolate', '--rows', 2, '--steps', 3,
                  '--out', out)
    grid = _read_png(out)
    assert grid.shape == (2 + 2 * (SIZE + 2), 2 + 3 * (SIZE + 2), 3)
    np.testing.assert_array_equal(grid, make_grid(images, nrow=3))


# --------------------------------------------------------------------------------------------
# weights sources
# --------------------------------------------------------------------------------------------
@pytest.mark.timeout(600)  # up to 170 s on two busy cores
def test_run_and_checkpoint_folders_load_like_the_params_file(weights, tmp_path):
    outs = [_run('--params', source, '--num', 3, '--out', tmp_path / 'x.npy')
            for source in (weights['params'], weights['checkpoint'], weights['run'])]
    np.testing.assert_array_equal(outs[1], outs[0])
    np.testing.assert_array_equal(outs[2], outs[0])
    ema = _run('--params', weights['run'], '--ema', '--num', 3, '--out', tmp_path / 'e.npy')
    # a moving-average generator is used with recalibrated BatchNorm statistics
    from gluoncv_gan.estimator.ema import recalibrate_batchnorm
    expected = get_model(NAME)
    expected.load_parameters(weights['checkpoint'] + '/model.params')
    expected.generator.load_parameters(weights['checkpoint'] + '/generator_ema.params')
    recalibrate_batchnorm(expected.generator, expected.nz)
    np.testing.assert_array_equal(ema, to_uint8_images(expected.generate(3, seed=0)))


def test_pretrained_weights_from_a_shipped_copy(weights, tmp_path, monkeypatch):
    shipped = tmp_path / 'shipped'
    sha1, _ = export_pair(weights['net'], NAME, str(shipped))
    monkeypatch.setattr(model_store, '_model_sha1_versions', [(sha1, NAME)])
    monkeypatch.setattr(model_store, 'SHIPPED_DIR', str(shipped))
    images = _run('--pretrained', '--num', 3, '--out', tmp_path / 'p.npy')
    net16 = get_model(NAME)
    net16.load_parameters(str(shipped / ('%s-%s.params' % (NAME, sha1[:8]))), cast_dtype=True,
                          dtype_source='current')
    np.testing.assert_array_equal(images, to_uint8_images(net16.generate(3, seed=0)))


def test_compare_with_puts_the_published_model_beside_on_the_same_latents(weights, tmp_path):
    """--compare-with NAME: the grid of --params (left) beside the published NAME's images of
    the same seed's latents (right), each under a title strip."""
    from gluoncv_gan.pipeline.sampling import generate_images
    out = tmp_path / 'both.png'
    images = _run('--params', weights['params'], '--num', 16, '--seed', 3,
                  '--compare-with', 'dcgan_lfw', '--out', out)
    published = make_grid(generate_images(get_model(NAME, pretrained=True), 16, seed=3))
    ours = make_grid(images)
    height, width = ours.shape[:2]
    picture = _read_png(out)
    assert picture.shape == (28 + height, 2 * width + 12, 3)
    np.testing.assert_array_equal(picture[28:, :width], ours)
    np.testing.assert_array_equal(picture[28:, width + 12:], published)
    assert not np.array_equal(ours, published)


def test_compare_with_an_unpublished_name_is_a_clear_error(weights, tmp_path, monkeypatch):
    monkeypatch.setattr(model_store, '_model_sha1_versions', [
        entry for entry in model_store._model_sha1_versions if entry[1] != NAME])
    out = tmp_path / 'both.png'
    message = _error_of('--params', weights['params'], '--compare-with', NAME, '--out', out)
    assert '--compare-with %s' % NAME in message and not out.exists()


# --------------------------------------------------------------------------------------------
# errors: a message, no traceback
# --------------------------------------------------------------------------------------------
def _error_of(*argv):
    """The message of a run that exits with code 2 (one line, also printed on stderr)."""
    with pytest.raises(SystemExit) as info:
        _run(*argv)
    assert info.value.code == 2
    return str(info.value)


def test_missing_params_path_is_a_clear_error(tmp_path):
    missing = tmp_path / 'nope' / 'model.params'
    message = _error_of('--params', missing, '--out', tmp_path / 'x.png')
    assert isinstance(message, str) and str(missing) in message and 'does not exist' in message
    assert not (tmp_path / 'x.png').exists()


def test_folder_without_weights_is_a_clear_error(tmp_path):
    empty = tmp_path / 'empty_run'
    empty.mkdir()
    message = _error_of('--params', empty, '--out', tmp_path / 'x.png')
    assert isinstance(message, str) and message.startswith('error:')
    assert str(empty) in message


def test_garbage_params_file_is_a_clear_error(tmp_path):
    garbage = tmp_path / 'model.params'
    garbage.write_bytes(b'not mxnet weights')
    message = _error_of('--params', garbage, '--out', tmp_path / 'x.png')
    assert isinstance(message, str) and message.startswith('error: cannot load')


def test_pretrained_with_nothing_published_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(model_store, '_model_sha1_versions', [])
    message = _error_of('--pretrained', '--out', tmp_path / 'x.png')
    assert isinstance(message, str) and 'No pretrained weights are published' in message


def test_pretrained_without_a_mirror_says_to_set_the_repo(tmp_path, monkeypatch):
    monkeypatch.setattr(model_store, '_model_sha1_versions', [('a' * 40, NAME)])
    monkeypatch.setattr(model_store, 'SHIPPED_DIR', str(tmp_path / 'none'))
    monkeypatch.delenv(model_store.REPO_ENV, raising=False)
    message = _error_of('--pretrained', '--out', tmp_path / 'x.png')
    assert isinstance(message, str) and model_store.REPO_ENV in message


@pytest.mark.parametrize('argv', [
    ['--interpolate', '--num', '4'],
    ['--interpolate', '--steps', '1'],
    ['--interpolate', '--steps', '4', '--nrow', '2'],
    ['--format', 'npy', '--out', 'x.png'],
    ['--format', 'png', '--out', 'x.npy'],
    ['--num', '0'],
    ['--ema'],
    ['--compare-with', 'dcgan_lfw', '--out', 'x.npy'],
])
def test_bad_arguments_are_refused(argv, capsys):
    _error_of(*argv)  # exit code 2 (argparse's usage error)
    assert 'error:' in capsys.readouterr().err
