"""DiffAugment: what the discriminator sees of real and generated batches."""
import mxnet as mx
import numpy as np
import pytest

from gluoncv_gan.data import LFWSample
from gluoncv_gan.data.loader import CachedBatchLoader
from gluoncv_gan.estimator import DiffAugment
from gluoncv_gan.estimator.augment import FAKE_FOR_D, REAL, parse_policy
from gluoncv_gan.utils.config import ConfigError, load_config
from test_train import small_estimator, snapshot


def batch(num=6, size=16, seed=0):
    return mx.nd.array(np.random.RandomState(seed).uniform(-1, 1, (num, 3, size, size)))


def test_translation_shifts_each_image_by_its_drawn_offset_and_fills_with_zero():
    aug = DiffAugment('translation', seed=1, translation=0.25)
    x = batch()
    (y,) = aug([x], iteration=4, part=REAL)
    shifts = aug.draw(4, REAL, 6, 16)['shift']
    assert np.abs(shifts).max() <= 4 and len({tuple(s) for s in shifts}) > 1
    for image, out, (dy, dx) in zip(x.asnumpy(), y.asnumpy(), shifts):
        expected = np.zeros_like(image)
        src = image[:, max(-dy, 0):16 - max(dy, 0), max(-dx, 0):16 - max(dx, 0)]
        expected[:, max(dy, 0):max(dy, 0) + src.shape[1], max(dx, 0):max(dx, 0) + src.shape[2]] = src
        np.testing.assert_array_equal(out, expected)


def test_cutout_zeroes_a_square_around_the_drawn_centre():
    aug = DiffAugment('cutout', seed=2, cutout=0.5)
    x = mx.nd.ones((8, 3, 16, 16))
    (y,) = aug([x], iteration=0, part=REAL)
    centres = aug.draw(0, REAL, 8, 16)['centre']
    for out, (cy, cx) in zip(y.asnumpy(), centres):
        rows = np.arange(16)[:, None]
        cols = np.arange(16)[None, :]
        inside = (rows >= cy - 4) & (rows < cy + 4) & (cols >= cx - 4) & (cols < cx + 4)
        np.testing.assert_array_equal(out[0] == 0, inside)
        assert (out[1:] == out[:1]).all()


def test_gradient_passes_through_every_policy():
    """The generator learns through the augmentation: for the linear policies the gradient of
    sum(aug(x)) is the count of outputs each input pixel reaches; with colour it is non-zero."""
    aug = DiffAugment('translation,cutout', seed=3)
    x = batch()
    x.attach_grad()
    with mx.autograd.record():
        (y,) = aug([x], iteration=1, part=FAKE_FOR_D)
        total = y.sum()
    total.backward()
    (reach,) = aug([mx.nd.ones_like(x)], iteration=1, part=FAKE_FOR_D)
    assert set(np.unique(x.grad.asnumpy())) == {0.0, 1.0}
    assert x.grad.sum().asscalar() == reach.sum().asscalar()

    aug = DiffAugment('color,translation,cutout', seed=3)
    x.grad[:] = 0
    with mx.autograd.record():
        (y,) = aug([x], iteration=1, part=FAKE_FOR_D)
        total = (y * y).sum()
    total.backward()
    grad = x.grad.asnumpy()
    assert np.isfinite(grad).all() and (np.abs(grad) > 0).mean() > 0.5


def test_a_worker_or_device_gets_its_rows_of_the_global_batch():
    """Shards and device chunks are augmented as the matching rows of one global batch, and
    the draw is a function of (seed, iteration, part) alone."""
    aug = DiffAugment('color,translation,cutout', seed=5)
    whole = batch(num=8)
    (reference,) = aug([whole], iteration=7, part=REAL)
    pieces = [whole[i * 2:(i + 1) * 2] for i in range(4)]
    per_worker = [aug(pieces[2 * r:2 * r + 2], iteration=7, part=REAL, shard=(r, 2))
                  for r in (0, 1)]
    joined = np.concatenate([c.asnumpy() for chunks in per_worker for c in chunks])
    np.testing.assert_allclose(joined, reference.asnumpy(), rtol=0, atol=1e-6)
    (again,) = DiffAugment('color,translation,cutout', seed=5)([whole], iteration=7, part=REAL)
    np.testing.assert_array_equal(again.asnumpy(), reference.asnumpy())
    (other,) = aug([whole], iteration=7, part=FAKE_FOR_D)
    assert not np.array_equal(other.asnumpy(), reference.asnumpy())


def test_policy_names_are_checked():
    assert parse_policy('cutout, color') == ['color', 'cutout']
    assert parse_policy('') == [] and not DiffAugment('')
    with pytest.raises(ValueError, match="unknown augmentation 'flip'"):
        parse_policy('color,flip')
    with pytest.raises(ConfigError, match='augment'):
        load_config(None, {'augment': 'color,rotate'})


def test_training_with_augmentation_is_reproducible_and_differs_from_without():
    results = []
    for policy in ('color,translation,cutout', 'color,translation,cutout', ''):
        mx.random.seed(0)  # the same initial weights
        est = small_estimator()
        est.augment = DiffAugment(policy, seed=3)
        est.fit(CachedBatchLoader(LFWSample(), 8, seed=0), total_iterations=2)
        results.append(list(snapshot(est.net.generator).values()))
    for first, second in zip(results[0], results[1]):
        np.testing.assert_array_equal(first, second)
    assert any(not np.array_equal(a, b) for a, b in zip(results[0], results[2]))
