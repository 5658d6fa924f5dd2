"""Tests of gluoncv_gan.metrics on synthetic images and on real LFW faces."""
import os
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from gluoncv_gan.metrics import (Diversity, FaceDetectionRate, SlicedWassersteinDistance,
                                 diversity, face_detection_rate, laplacian_pyramid,
                                 memorization_score, nearest_neighbour_distances,
                                 sliced_wasserstein_distance, to_uint8_nhwc)
from gluoncv_gan.metrics import swd as swd_module
from gluoncv_gan.metrics.diversity import random_pairs
from gluoncv_gan.metrics.memorization import thumbnails

LFW_ENV = 'GLUONCV_GAN_LFW_ARCHIVE'
REPO_ROOT = Path(__file__).resolve().parents[1]
NUM_LFW = 600
# Cheap SWD settings for behavioural tests that do not depend on the exact statistic.
FAST_SWD = dict(nhoods_per_image=32, dir_repeats=1, dirs_per_repeat=64)


# ----------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------
def lfw_archive_path():
    """``$GLUONCV_GAN_LFW_ARCHIVE`` or ``../shared/data/lfw-deepfunneled.tgz`` from the repo."""
    env = os.environ.get(LFW_ENV)
    if env:
        return Path(env)
    return REPO_ROOT.parent / 'shared' / 'data' / 'lfw-deepfunneled.tgz'


def read_lfw(path, count, size=64):
    """Decode the first ``count`` JPEGs of the tarball to uint8 RGB ``(count, size, size, 3)``."""
    faces = []
    with tarfile.open(path, 'r:gz') as archive:
        for member in archive:
            if not (member.isfile() and member.name.lower().endswith('.jpg')):
                continue
            data = np.frombuffer(archive.extractfile(member).read(), dtype=np.uint8)
            bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
            small = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA)
            faces.append(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
            if len(faces) == count:
                break
    return np.stack(faces)


@pytest.fixture(scope='session')
def lfw_faces():
    """600 real LFW faces as uint8 (600, 64, 64, 3) RGB, read from the tarball without extracting.

    The archive is taken from ``$GLUONCV_GAN_LFW_ARCHIVE`` or else from
    ``../shared/data/lfw-deepfunneled.tgz`` relative to the repository root;
    the tests that need real faces are skipped when it is absent.  When the
    package ships its small bundled sample of faces, this fixture can read
    that sample instead.
    """
    path = lfw_archive_path()
    if not path.is_file():
        pytest.skip('LFW archive not found at {} (set {} to the path of '
                    'lfw-deepfunneled.tgz)'.format(path, LFW_ENV))
    return read_lfw(path, NUM_LFW)


def blocky_images(count, seed, size=64, block=8):
    """Synthetic uint8 images: coarse random blocks plus fine noise (content in every band)."""
    rng = np.random.RandomState(seed)
    coarse = rng.randint(0, 200, (count, size // block, size // block, 3))
    images = coarse.repeat(block, axis=1).repeat(block, axis=2)
    return (images + rng.randint(0, 56, images.shape)).astype(np.uint8)


def uniform_noise(count, seed, size=64):
    """uint8 uniform noise images (count, size, size, 3)."""
    return np.random.RandomState(seed).randint(0, 256, (count, size, size, 3)).astype(np.uint8)


def gaussian_blur(images, sigma=1.5):
    """Blur every image with a Gaussian of the given sigma."""
    return np.stack([cv2.GaussianBlur(image, (0, 0), sigma) for image in images])


def mean_face(images, count):
    """The pixel-wise mean image, repeated ``count`` times (a fully collapsed generator)."""
    return np.repeat(np.rint(images.mean(axis=0)).astype(np.uint8)[None], count, axis=0)


# ----------------------------------------------------------------------------
# Input conversion
# ----------------------------------------------------------------------------
def test_to_uint8_nhwc_passes_uint8_through():
    images = blocky_images(3, seed=0)
    out = to_uint8_nhwc(images)
    assert out.dtype == np.uint8 and out.shape == images.shape
    assert np.shares_memory(out, images)


def test_to_uint8_nhwc_converts_float_nchw_ndarray_with_rounding_and_clipping():
    import mxnet as mx
    values = np.array([-1.5, -1.0, -0.999, 0.0, 0.5, 1.0, 1.25], dtype=np.float32)
    batch = np.broadcast_to(values, (2, 3, 4, 7)).copy()
    out = to_uint8_nhwc(mx.nd.array(batch))
    assert out.dtype == np.uint8 and out.shape == (2, 4, 7, 3)
    np.testing.assert_array_equal(out[1, 2, :, 0], [0, 0, 0, 128, 191, 255, 255])


@pytest.mark.parametrize('bad, error, message', [
    (np.zeros((2, 3, 8, 8), np.uint8), ValueError, r'\(N, H, W, 3\)'),
    (np.zeros((8, 8, 3), np.uint8), ValueError, r'x\[None\]'),
    (np.zeros((2, 8, 8, 3), np.float32), ValueError, r'\(N, 3, H, W\)'),
    (np.zeros((2, 8, 8, 3), np.int64), TypeError, 'astype'),
    (np.full((2, 3, 8, 8), 200.0, np.float32), ValueError, r'\[-1, 1\]'),
    (np.full((2, 3, 8, 8), np.nan, np.float32), ValueError, 'NaN'),
    ([[0, 1, 2]], TypeError, 'np.stack'),
])
def test_to_uint8_nhwc_rejects_bad_input_with_a_fix(bad, error, message):
    with pytest.raises(error, match=message):
        to_uint8_nhwc(bad)


def test_metrics_refuse_too_few_images():
    one = blocky_images(1, seed=0)
    with pytest.raises(ValueError, match='at least 2'):
        sliced_wasserstein_distance(one, blocky_images(4, seed=1))
    with pytest.raises(ValueError, match='at least 2'):
        diversity(one)
    with pytest.raises(ValueError, match='at least 10'):
        memorization_score(one, blocky_images(20, seed=1), blocky_images(5, seed=2))


# ----------------------------------------------------------------------------
# Sliced Wasserstein distance: building blocks
# ----------------------------------------------------------------------------
def test_laplacian_pyramid_matches_opencv_and_reconstructs():
    images = blocky_images(3, seed=0)
    pyramid = laplacian_pyramid(images)
    assert [level.shape for level in pyramid] == [(3, 3, 64, 64), (3, 3, 32, 32), (3, 3, 16, 16)]
    for i, image in enumerate(images.astype(np.float32)):
        g1 = cv2.pyrDown(image)
        g2 = cv2.pyrDown(g1)
        expected = [image - cv2.pyrUp(g1), g1 - cv2.pyrUp(g2), g2]
        for level, want in zip(pyramid, expected):
            np.testing.assert_allclose(level[i].transpose(1, 2, 0), want, atol=1e-3)
        rebuilt = pyramid[0][i] + swd_module._pyr_up(pyramid[1][i:i + 1]
                                                     + swd_module._pyr_up(pyramid[2][i:i + 1]))[0]
        np.testing.assert_allclose(rebuilt.transpose(1, 2, 0), image, atol=1e-3)


def test_laplacian_pyramid_rejects_sizes_that_do_not_halve():
    with pytest.raises(ValueError, match='halved evenly'):
        laplacian_pyramid(np.zeros((2, 33, 33, 3), np.uint8))  # 33 is odd but 16 >= 16
    with pytest.raises(ValueError, match='smaller than the coarsest'):
        laplacian_pyramid(np.zeros((2, 8, 8, 3), np.uint8))


def test_wasserstein_of_sorted_samples_matches_scipy_for_unequal_sizes():
    rng = np.random.RandomState(0)
    a = np.sort(rng.randn(3, 37), axis=1)
    b = np.sort(rng.randn(3, 53) * 2 + 1, axis=1)
    got = swd_module._wasserstein_sorted(a, b)
    want = [wasserstein_distance(a[i], b[i]) for i in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize('num_fake', [40, 30])  # equal-size fast path and the general path
def test_quantised_sort_agrees_with_exact_sort(num_fake):
    real = blocky_images(40, seed=0)
    fake = gaussian_blur(blocky_images(num_fake, seed=1), 1.0)
    fast = sliced_wasserstein_distance(real, fake, dir_repeats=1)
    exact = sliced_wasserstein_distance(real, fake, dir_repeats=1, exact=True)
    np.testing.assert_allclose(fast['swd_levels'], exact['swd_levels'], rtol=1e-3)


# ----------------------------------------------------------------------------
# Sliced Wasserstein distance: behaviour
# ----------------------------------------------------------------------------
def test_swd_of_identical_sets_is_zero():
    images = blocky_images(50, seed=0)
    result = sliced_wasserstein_distance(images, images.copy(), **FAST_SWD)
    assert result['resolutions'] == [64, 32, 16]
    np.testing.assert_allclose(result['swd_levels'], 0.0, atol=1e-6)


def test_swd_does_not_depend_on_image_order():
    real, fake = blocky_images(60, seed=0), blocky_images(50, seed=1)
    base = sliced_wasserstein_distance(real, fake, **FAST_SWD)
    perm = np.random.RandomState(3).permutation(len(real))
    shuffled = sliced_wasserstein_distance(real[perm], fake[::-1], **FAST_SWD)
    # Order-dependent patch positions would move the result by several per cent.
    np.testing.assert_allclose(shuffled['swd_levels'], base['swd_levels'], rtol=1e-5)


def test_swd_is_repeatable_for_a_seed_and_changes_with_it():
    real, fake = blocky_images(40, seed=0), blocky_images(40, seed=1)
    first = sliced_wasserstein_distance(real, fake, seed=7, **FAST_SWD)
    second = sliced_wasserstein_distance(real, fake, seed=7, **FAST_SWD)
    other = sliced_wasserstein_distance(real, fake, seed=8, **FAST_SWD)
    assert first == second
    assert other['swd_levels'] != first['swd_levels']


def test_swd_rejects_sets_of_different_sizes():
    with pytest.raises(ValueError, match='differ in size'):
        sliced_wasserstein_distance(blocky_images(4, 0), blocky_images(4, 1, size=32))


def test_swd_metric_accumulates_batches_like_the_function():
    import mxnet as mx
    real, fake = blocky_images(30, seed=0), blocky_images(24, seed=1)
    metric = SlicedWassersteinDistance(**FAST_SWD)
    assert np.isnan(metric.get()[1]) and metric.get_levels() == []
    metric.update(real=real[:10], fake=fake[:12])
    metric.update(real=real[10:])
    fake_float = fake[12:].transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1
    metric.update(fake=mx.nd.array(fake_float))
    want = sliced_wasserstein_distance(real, fake, **FAST_SWD)
    name, value = metric.get()
    assert name == 'swd' and value == pytest.approx(want['swd'], rel=1e-6)
    assert metric.get_levels() == list(zip(want['resolutions'], want['swd_levels']))
    metric.reset()
    assert np.isnan(metric.get()[1])


@pytest.fixture(scope='module')
def lfw_swd(lfw_faces):
    """SWD (paper settings) of 300 real faces against several 300-image sets."""
    real, other = lfw_faces[:300], lfw_faces[300:]
    candidates = {'real': other, 'blurred': gaussian_blur(other, 1.5),
                  'mean_face': mean_face(lfw_faces, 300), 'noise': uniform_noise(300, seed=0)}
    return {name: sliced_wasserstein_distance(real, images) for name, images in candidates.items()}


def test_swd_real_vs_real_is_small(lfw_swd):
    # Measured 17.6 for two disjoint sets of 300 LFW faces (small sets inflate the value).
    assert lfw_swd['real']['swd'] < 30


def test_swd_real_vs_blurred_is_clearly_larger_mostly_at_the_finest_level(lfw_swd):
    real, blurred = lfw_swd['real'], lfw_swd['blurred']
    assert blurred['swd'] > 2 * real['swd']  # measured 61 vs 18
    assert blurred['swd_levels'][0] > 5 * real['swd_levels'][0]  # 64x64 band: 114 vs 12


@pytest.mark.parametrize('name', ['mean_face', 'noise'])
def test_swd_real_vs_collapsed_or_noise_is_far_larger(lfw_swd, name):
    assert lfw_swd[name]['swd'] > 5 * lfw_swd['real']['swd']  # measured about 170 vs 18


# ----------------------------------------------------------------------------
# Face-detection rate
# ----------------------------------------------------------------------------
def test_face_rate_is_high_on_real_faces(lfw_faces):
    assert face_detection_rate(lfw_faces[:150]) > 0.9  # measured 0.99 on 600 faces


def test_face_rate_is_zero_on_noise():
    assert face_detection_rate(uniform_noise(100, seed=0)) <= 0.02


def test_face_rate_metric_counts_batches(lfw_faces):
    faces, noise = lfw_faces[:40], uniform_noise(40, seed=1)
    metric = FaceDetectionRate()
    assert np.isnan(metric.get()[1])
    metric.update(faces)
    metric.update(noise)
    want = (face_detection_rate(faces) * 40 + face_detection_rate(noise) * 40) / 80
    assert metric.get() == ('face_rate', pytest.approx(want))
    assert metric.num_inst == 80


def test_face_rate_reports_a_missing_cascade():
    with pytest.raises(FileNotFoundError, match='cascade'):
        face_detection_rate(uniform_noise(2, seed=0), cascade='/nonexistent/cascade.xml')


# ----------------------------------------------------------------------------
# Diversity
# ----------------------------------------------------------------------------
def test_random_pairs_are_disjoint_within_a_round_and_never_self_pairs():
    pairs = random_pairs(11, 12, seed=0)
    assert pairs.shape == (12, 2)
    assert np.all(pairs[:, 0] != pairs[:, 1])
    first_round = pairs[:5].ravel()
    assert len(np.unique(first_round)) == 10


def test_diversity_of_one_repeated_face_is_far_below_real(lfw_faces):
    real = diversity(lfw_faces, num_pairs=1000)
    collapsed = diversity(np.repeat(lfw_faces[:1], 300, axis=0), num_pairs=1000)
    assert real > 0.3  # measured 0.36-0.37 on 64x64 LFW
    assert collapsed < 0.1 * real


def test_diversity_of_noise_is_above_real(lfw_faces):
    real = diversity(lfw_faces, num_pairs=1000)
    noise = diversity(uniform_noise(300, seed=0), num_pairs=1000)
    # noise: sqrt(1/6) = 0.408; real LFW: about 0.365 with a spread of about 0.004 here
    assert noise == pytest.approx(np.sqrt(1 / 6), abs=0.005)
    assert noise > 1.05 * real


def test_diversity_is_seeded_and_the_metric_matches_the_function():
    images = blocky_images(41, seed=0)
    assert diversity(images, seed=3) == diversity(images, seed=3)
    metric = Diversity(num_pairs=30, seed=3)
    metric.update(images[:20])
    metric.update(images[20:])
    assert metric.get() == ('diversity', diversity(images, num_pairs=30, seed=3))


# ----------------------------------------------------------------------------
# Memorisation
# ----------------------------------------------------------------------------
@pytest.mark.parametrize('size', [64, 48])  # block average, and OpenCV for a non-integer factor
def test_thumbnails_are_area_resized_in_unit_scale(size):
    images = blocky_images(3, seed=0, size=size)
    want = np.stack([cv2.resize(im, (32, 32), interpolation=cv2.INTER_AREA) for im in images])
    got = thumbnails(images).reshape(3, 32, 32, 3) * 255
    np.testing.assert_allclose(got, want, atol=0.51)  # OpenCV rounds to uint8


def test_nearest_neighbour_finds_the_copied_training_image():
    train = blocky_images(50, seed=0)
    queries = train[[7, 3, 42]]
    dists, index = nearest_neighbour_distances(queries, train, return_index=True)
    np.testing.assert_array_equal(index, [7, 3, 42])
    np.testing.assert_array_equal(dists, 0.0)
    two = nearest_neighbour_distances(queries, train, k=2)
    assert two.shape == (3, 2) and np.all(two[:, 1] > 0)


@pytest.fixture(scope='module')
def lfw_split(lfw_faces):
    """Training set (400), held-out set (100) and unseen real images (100)."""
    return lfw_faces[:400], lfw_faces[400:500], lfw_faces[500:600]


@pytest.mark.parametrize('noise_sigma', [0.0, 0.05])
def test_memorization_flags_copies_of_training_images(lfw_split, noise_sigma):
    train, heldout, _ = lfw_split
    rng = np.random.RandomState(0)
    copies = train[rng.choice(len(train), 100, replace=False)].astype(np.float64)
    copies = np.clip(np.rint(copies + rng.randn(*copies.shape) * noise_sigma * 255), 0, 255)
    result = memorization_score(copies.astype(np.uint8), train, heldout)
    assert result['copied_fraction'] > 0.9
    assert not result['passed']
    assert result['ratio'] < 0.5


def test_memorization_passes_unseen_real_images(lfw_split):
    train, heldout, unseen = lfw_split
    result = memorization_score(unseen, train, heldout)
    assert result['passed']
    assert 0.7 < result['ratio'] < 1.4
