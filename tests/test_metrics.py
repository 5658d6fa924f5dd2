"""Tests of gluoncv_gan.metrics on synthetic images and on real LFW faces.

The sanity checks on real faces run on the sample of LFW bundled with the package (always
present) and again on the full LFW mirror when it is available (``lfw_archive()`` or the
``full_lfw_root`` fixture of conftest.py); only the ``full`` variant is skipped without it.
"""
import tarfile

import cv2
import numpy as np
import pytest
from conftest import lfw_archive
from scipy.stats import wasserstein_distance

from gluoncv_gan.data import LFW, LFWSample
from gluoncv_gan.data.cache import decode_image
from gluoncv_gan.metrics import (Diversity, FaceDetectionRate, SlicedWassersteinDistance,
                                 diversity, face_detection_rate, laplacian_pyramid,
                                 memorization_score, nearest_neighbour_distances,
                                 sliced_wasserstein_distance, to_uint8_nhwc)
from gluoncv_gan.metrics import swd as swd_module
from gluoncv_gan.metrics.diversity import random_pairs
from gluoncv_gan.metrics.memorization import thumbnails
from gluoncv_gan.utils.image import to_uint8_images

NUM_FULL = 600  # faces read from the full mirror (the bundled sample has 300)
# Cheap SWD settings for behavioural tests that do not depend on the exact statistic.
FAST_SWD = dict(nhoods_per_image=32, dir_repeats=1, dirs_per_repeat=64)


# ----------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------
def read_lfw_archive(path, count, size=64):
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


def read_lfw_root(root, count, size=64):
    """Decode ``count`` images spread evenly over a prepared LFW root (no cache is written)."""
    files = LFW(root=root, use_cache=False).files
    picks = np.linspace(0, len(files) - 1, count).astype(int)
    return np.stack([decode_image(files[i], size) for i in picks])


@pytest.fixture(scope='module')
def sample_faces(tmp_path_factory):
    """The 300 bundled LFW faces, uint8 (300, 64, 64, 3) RGB (cached in a temporary folder)."""
    cache = tmp_path_factory.mktemp('lfw_sample_cache')
    return np.asarray(LFWSample(cache_dir=str(cache)).images)


@pytest.fixture(scope='module', params=['sample', 'full'])
def lfw_faces(request):
    """Real faces in a fixed random order, so that any two slices are disjoint random sets.

    ``sample``: the 300 bundled faces. ``full``: 600 faces of the full mirror, read straight
    from the archive when ``lfw_archive()`` finds it, else from ``full_lfw_root`` (which skips
    this variant when neither is available).
    """
    if request.param == 'sample':
        faces = request.getfixturevalue('sample_faces')
    elif lfw_archive() is not None:
        faces = read_lfw_archive(lfw_archive(), NUM_FULL)
    else:
        faces = read_lfw_root(request.getfixturevalue('full_lfw_root'), NUM_FULL)
    return faces[np.random.RandomState(0).permutation(len(faces))]


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


def test_to_uint8_nhwc_is_to_uint8_images_restricted_to_rgb():
    gray = np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5, 1)
    assert to_uint8_images(gray).shape == (2, 4, 5, 1)
    with pytest.raises(ValueError, match=r'\(N, H, W, 3\)'):
        to_uint8_nhwc(gray)
    values = np.linspace(-1, 1, 2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    np.testing.assert_array_equal(to_uint8_nhwc(values), to_uint8_images(values))
    with pytest.raises(ValueError, match='NaN'):
        to_uint8_images(np.full((1, 1, 4, 4), np.nan, np.float32))


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
    """SWD (paper settings) of one half of the real faces against several sets of that size.

    Halves: 150 faces each for the sample, 300 for the full mirror.
    """
    half = len(lfw_faces) // 2
    real, other = lfw_faces[:half], lfw_faces[half:2 * half]
    candidates = {'real': other, 'blurred': gaussian_blur(other, 1.5),
                  'mean_face': mean_face(lfw_faces, half), 'noise': uniform_noise(half, seed=0)}
    return {name: sliced_wasserstein_distance(real, images) for name, images in candidates.items()}


def test_swd_real_vs_real_is_small(lfw_swd):
    # Measured 21.6 for the sample's two halves of 150 (19.5-24.4 over 8 random splits) and
    # 16.8 for two sets of 300 from the full mirror: small sets inflate the value.
    assert lfw_swd['real']['swd'] < 30


def test_swd_real_vs_blurred_is_clearly_larger_mostly_at_the_finest_level(lfw_swd):
    real, blurred = lfw_swd['real'], lfw_swd['blurred']
    assert blurred['swd'] > 2 * real['swd']  # measured 63.7 vs 21.6 (sample), 60.0 vs 16.8 (full)
    # 64x64 band: 114.9 vs 16.7 (sample), 110.3 vs 11.0 (full)
    assert blurred['swd_levels'][0] > 5 * real['swd_levels'][0]


@pytest.mark.parametrize('name', ['mean_face', 'noise'])
def test_swd_real_vs_collapsed_or_noise_is_far_larger(lfw_swd, name):
    # Measured 165-178 for both against 21.6 / 16.8 (real) and 63.7 / 60.0 (blurred).
    assert lfw_swd[name]['swd'] > 5 * lfw_swd['real']['swd']
    assert lfw_swd[name]['swd'] > 2 * lfw_swd['blurred']['swd']


# ----------------------------------------------------------------------------
# Face-detection rate
# ----------------------------------------------------------------------------
def test_face_rate_is_high_on_real_faces(lfw_faces):
    assert face_detection_rate(lfw_faces[:150]) > 0.9  # measured 0.96 (sample), 0.987 (full)


def test_face_rate_is_zero_on_noise():
    assert face_detection_rate(uniform_noise(100, seed=0)) <= 0.02


def test_face_rate_metric_counts_batches(sample_faces):
    faces, noise = sample_faces[:40], uniform_noise(40, seed=1)
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
    assert real > 0.3  # measured 0.358 (sample), 0.363 (full); 0.356-0.362 over pair seeds
    assert collapsed < 0.1 * real


def test_diversity_of_noise_is_above_real(lfw_faces):
    real = diversity(lfw_faces, num_pairs=1000)
    noise = diversity(uniform_noise(300, seed=0), num_pairs=1000)
    # noise: sqrt(1/6) = 0.408 (measured 0.410); real LFW: 0.358 (sample), 0.363 (full),
    # with a spread of about 0.004 over pair seeds
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
    """Disjoint training (1/3), held-out (7/15) and unseen (1/5) sets of the real faces.

    100 / 140 / 60 faces for the sample, 200 / 280 / 120 for the full mirror.  The held-out
    set is the larger one because the copy threshold is its 1st percentile.
    """
    num = len(lfw_faces)
    train_end, heldout_end = num // 3, num * 4 // 5
    return (lfw_faces[:train_end], lfw_faces[train_end:heldout_end],
            lfw_faces[heldout_end:])


@pytest.mark.parametrize('noise_sigma', [0.0, 0.05])
def test_memorization_flags_copies_of_training_images(lfw_split, noise_sigma):
    train, heldout, _ = lfw_split
    rng = np.random.RandomState(0)
    copies = train[rng.choice(len(train), 100, replace=False)].astype(np.float64)
    copies = np.clip(np.rint(copies + rng.randn(*copies.shape) * noise_sigma * 255), 0, 255)
    result = memorization_score(copies.astype(np.uint8), train, heldout)
    # measured for both variants: copied fraction 1.0, ratio 0 (exact) and 0.10 (noisy)
    assert result['copied_fraction'] > 0.9
    assert not result['passed']
    assert result['ratio'] < 0.5


def test_memorization_passes_unseen_real_images(lfw_split):
    train, heldout, unseen = lfw_split
    result = memorization_score(unseen, train, heldout)
    # Measured: copied fraction 0.0 and ratio 0.955 (sample), 0.0 and 0.983 (full).  With only
    # 140 held-out images the 1st-percentile threshold is noisy: over 150 random splits of the
    # sample this check failed on 2 % of them (copied fraction above 0.05); the split is fixed.
    assert result['passed']
    assert 0.7 < result['ratio'] < 1.4
