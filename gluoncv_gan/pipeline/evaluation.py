"""Measure a set of generated images against real ones: SWD, face rate, diversity, memorisation.

The real images are split once, with a seed, into the reference set the metrics compare with and
the rest, the training reference of the memorisation check (:func:`split_real`).
"""
import os
import time

import cv2
import numpy as np

from ..data import LFW, FaceFolder, LFWSample
from ..metrics import (diversity, face_detection_rate, memorization_score,
                       sliced_wasserstein_distance)
from ..utils.seeds import EVALUATION_LATENT_SALT, REAL_FLOOR_SALT, REAL_SUBSET_SALT

__all__ = ['load_images', 'downscale', 'real_subset', 'split_real', 'other_real', 'evaluate_images',
           'evaluation_latents', 'MAX_MEMORIZATION_REFERENCE']

MAX_MEMORIZATION_REFERENCE = 10000


def evaluation_latents(num, nz, seed):
    """The latent vectors (num, nz, 1, 1) of training's evaluations, the same at every epoch."""
    rng = np.random.RandomState([seed, EVALUATION_LATENT_SALT])
    return rng.standard_normal((num, nz, 1, 1)).astype(np.float32)


def _resize_all(images, size):
    if images.shape[1] == size and images.shape[2] == size:
        return images
    return np.stack([cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
                     for img in images])


def downscale(images, size):
    """uint8 NHWC ``images`` resized to ``size`` x ``size`` by area interpolation, as LFW is
    prepared; refuses to upscale, which would only blur what is measured."""
    if size > images.shape[1]:
        raise ValueError('--size %d is larger than the %dx%d images: samples can only be '
                         'downscaled; pass --size %d or less' % (size, images.shape[1],
                                                                 images.shape[1], images.shape[1]))
    return _resize_all(images, size)


def load_images(source, size):
    """All images of ``source`` as uint8 NHWC RGB at ``size`` x ``size``.

    ``source`` is ``lfw_sample`` (the bundled faces), an LFW root (holding
    ``lfw-deepfunneled/``), any folder of images (searched recursively), or an ``.npy`` of uint8
    NHWC RGB images; ``size`` None keeps the size of an ``.npy``.
    """
    if source == 'lfw_sample':
        return np.asarray(LFWSample(size=size).images)
    source = os.path.expanduser(source)
    if source.endswith('.npy'):
        if not os.path.isfile(source):
            raise FileNotFoundError('image file %s does not exist' % source)
        try:
            images = np.load(source, mmap_mode='r')
        except (ValueError, OSError, EOFError) as err:
            raise ValueError('%s is not a readable .npy array (%s); pass a uint8 array of shape '
                             '(N, H, H, 3), RGB, e.g. from python -m gluoncv_gan.sample --out '
                             'fake.npy' % (source, err)) from None
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 \
                or images.shape[-1] != 3 \
                or images.shape[1] != images.shape[2]:
            raise ValueError('%s holds %s %s; expected square uint8 images of shape '
                             '(N, H, H, 3), RGB' % (source, images.dtype, images.shape))
        return _resize_all(np.asarray(images), size or images.shape[1])
    if os.path.isdir(os.path.join(source, 'lfw-deepfunneled')):
        return np.asarray(LFW(root=source, size=size).images)
    return np.asarray(FaceFolder(source, size=size, cache_dir=False).images)


def real_subset(real, num, seed):
    """``num`` real images drawn with ``seed``, in their order in ``real``.

    The same draw for the same ``seed`` and images in :mod:`gluoncv_gan.evaluate` and in
    training's :class:`~gluoncv_gan.estimator.EvaluationHandler`.
    """
    return real[np.sort(_real_order(len(real), seed)[:num])]


def split_real(real, num, seed):
    """(reference, rest): :func:`real_subset` and all the other images.

    The reference takes at most half of ``real``, so that the memorisation check keeps a
    training reference of its own.
    """
    order = _real_order(len(real), seed)
    num = min(num, len(real) // 2)
    return real[np.sort(order[:num])], real[np.sort(order[num:])]


def other_real(rest, num, seed):
    """``num`` images of ``rest`` (the real images outside the reference set), drawn with ``seed``.

    Measured in place of generated images they give the floor of every metric: what a generator
    that samples the real distribution perfectly would score against the same reference set.
    """
    if num > len(rest):
        raise ValueError('the real-vs-real floor needs %d other real images, but only %d are '
                         'outside the reference set: lower --num-samples to at most %d'
                         % (num, len(rest), len(rest)))
    order = np.random.RandomState([seed, REAL_FLOOR_SALT]).permutation(len(rest))
    return rest[np.sort(order[:num])]


def _real_order(count, seed):
    return np.random.RandomState([seed, REAL_SUBSET_SALT]).permutation(count)


def _timed(timings, name, func, *args, **kwargs):
    start = time.time()
    result = func(*args, **kwargs)
    timings[name] = round(time.time() - start, 3)
    return result


def evaluate_images(fake, real_reference, real_rest=None, seed=0, face_rate_real=True,
                    diversity_real=True):
    """Every metric of ``fake`` against real images; a JSON-ready dict.

    Parameters
    ----------
    fake : numpy.ndarray
        uint8 NHWC generated images.
    real_reference : numpy.ndarray
        uint8 NHWC real images, same size (the comparison set).
    real_rest : numpy.ndarray or None
        Other real images, the training reference of the memorisation check (skipped if None).
    seed : int
        Seed of every metric's random choices.
    face_rate_real, diversity_real : bool
        Also measure the real reference (training measures it once, not at every evaluation).
    """
    timings = {}
    out = {}
    swd = _timed(timings, 'swd', sliced_wasserstein_distance, real_reference, fake, seed=seed)
    out.update(swd=swd['swd'], swd_levels=swd['swd_levels'], swd_resolutions=swd['resolutions'])
    out['face_rate'] = _timed(timings, 'face_rate', face_detection_rate, fake)
    if face_rate_real:
        out['face_rate_real'] = _timed(timings, 'face_rate_real', face_detection_rate,
                                       real_reference)
    out['diversity'] = _timed(timings, 'diversity', diversity, fake, seed=seed)
    if diversity_real:
        out['diversity_real'] = _timed(timings, 'diversity_real', diversity, real_reference,
                                       seed=seed)
    if real_rest is not None and len(real_rest) >= 2:
        rest = real_rest[:MAX_MEMORIZATION_REFERENCE]
        out['memorization'] = _timed(timings, 'memorization', memorization_score, fake, rest,
                                     real_reference)
    out['timings'] = timings
    return out
