"""Measure a set of generated images against real ones.

The project's own metrics (SWD, face rate, diversity, memorisation, sharpness) compare with a
reference set drawn from the real images with a seed, the rest being the training reference of
the memorisation check (:func:`split_real`). The field's metrics (FID, KID, precision/recall)
compare with the Inception features of all the real images (:mod:`gluoncv_gan.metrics.inception`).
"""
import os
import time

import cv2
import numpy as np

from ..data import LFW, FaceFolder, LFWSample
from ..metrics import (diversity, face_detection_rate, inception_scores, memorization_score,
                       sharpness_ratio, sliced_wasserstein_distance)
from ..metrics.inception import inception_features
from ..utils.seeds import EVALUATION_LATENT_SALT, REAL_FLOOR_SALT, REAL_SUBSET_SALT
from .sampling import sample_images

__all__ = ['load_images', 'downscale', 'real_subset', 'split_real', 'split_real_indices',
           'other_real', 'other_real_indices', 'evaluate_images', 'evaluation_latents',
           'parse_metrics', 'GeneratorEvaluation', 'METRICS', 'DEFAULT_METRICS', 'INCEPTION_METRICS',
           'MAX_MEMORIZATION_REFERENCE']

MAX_MEMORIZATION_REFERENCE = 10000
# every metric by name; the Inception ones need the [fid] extra
METRICS = ('swd', 'face', 'diversity', 'memorization', 'sharpness', 'fid', 'kid', 'pr')
DEFAULT_METRICS = ('swd', 'face', 'diversity', 'memorization', 'sharpness')
INCEPTION_METRICS = ('fid', 'kid', 'pr')


def parse_metrics(names):
    """A tuple of metric names, in :data:`METRICS` order, from a comma-separated string or a
    list; ``all`` is every metric, ``default`` :data:`DEFAULT_METRICS`."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(',') if n.strip()]
    chosen = set()
    for name in names:
        name = str(name).lower()
        if name == 'all':
            chosen.update(METRICS)
        elif name == 'default':
            chosen.update(DEFAULT_METRICS)
        elif name in METRICS:
            chosen.add(name)
        else:
            raise ValueError('unknown metric %r: choose from %s, all or default'
                             % (name, ', '.join(METRICS)))
    if not chosen:
        raise ValueError('no metric given: choose from %s, all or default' % ', '.join(METRICS))
    return tuple(m for m in METRICS if m in chosen)


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


def split_real_indices(count, num, seed):
    """Indices (reference, rest) of :func:`split_real` among ``count`` real images."""
    order = _real_order(count, seed)
    num = min(num, count // 2)
    return np.sort(order[:num]), np.sort(order[num:])


def split_real(real, num, seed):
    """(reference, rest): :func:`real_subset` and all the other images.

    The reference takes at most half of ``real``, so that the memorisation check keeps a
    training reference of its own.
    """
    reference, rest = split_real_indices(len(real), num, seed)
    return real[reference], real[rest]


def other_real_indices(rest_indices, num, seed):
    """``num`` of ``rest_indices`` drawn with ``seed``, sorted: the images of :func:`other_real`."""
    if num > len(rest_indices):
        raise ValueError('the real-vs-real floor needs %d other real images, but only %d are '
                         'outside the reference set: lower --num-samples to at most %d'
                         % (num, len(rest_indices), len(rest_indices)))
    order = np.random.RandomState([seed, REAL_FLOOR_SALT]).permutation(len(rest_indices))
    return np.asarray(rest_indices)[np.sort(order[:num])]


def other_real(rest, num, seed):
    """``num`` images of ``rest`` (the real images outside the reference set), drawn with ``seed``.

    Measured in place of generated images they give the floor of every metric: what a generator
    that samples the real distribution perfectly would score against the same reference set.
    """
    return rest[other_real_indices(np.arange(len(rest)), num, seed)]


def _real_order(count, seed):
    return np.random.RandomState([seed, REAL_SUBSET_SALT]).permutation(count)


def _timed(timings, name, func, *args, **kwargs):
    start = time.time()
    result = func(*args, **kwargs)
    timings[name] = round(time.time() - start, 3)
    return result


def evaluate_images(fake, real_reference, real_rest=None, seed=0, face_rate_real=True,
                    diversity_real=True, metrics=DEFAULT_METRICS, real_features=None,
                    fake_features=None):
    """The chosen metrics of ``fake`` against real images; a JSON-ready dict.

    Parameters
    ----------
    fake : numpy.ndarray
        uint8 NHWC generated images.
    real_reference : numpy.ndarray
        uint8 NHWC real images, same size (the comparison set of SWD, face rate, diversity and
        sharpness).
    real_rest : numpy.ndarray or None
        Other real images, the training reference of the memorisation check (skipped if None).
    seed : int
        Seed of every metric's random choices.
    face_rate_real, diversity_real : bool
        Also measure the real reference (training measures it once, not at every evaluation).
    metrics : sequence of str
        Names from :data:`METRICS`.
    real_features : numpy.ndarray or None
        Inception features of the real images FID, KID and precision/recall compare with
        (:func:`~gluoncv_gan.metrics.inception.reference_features`); needed for those metrics.
    fake_features : numpy.ndarray or None
        Inception features of ``fake`` when already known; computed when needed otherwise.
    """
    metrics = parse_metrics(metrics)
    timings = {}
    out = {}
    if 'swd' in metrics:
        swd = _timed(timings, 'swd', sliced_wasserstein_distance, real_reference, fake, seed=seed)
        out.update(swd=swd['swd'], swd_levels=swd['swd_levels'],
                   swd_resolutions=swd['resolutions'])
    if 'face' in metrics:
        out['face_rate'] = _timed(timings, 'face_rate', face_detection_rate, fake)
        if face_rate_real:
            out['face_rate_real'] = _timed(timings, 'face_rate_real', face_detection_rate,
                                           real_reference)
    if 'diversity' in metrics:
        out['diversity'] = _timed(timings, 'diversity', diversity, fake, seed=seed)
        if diversity_real:
            out['diversity_real'] = _timed(timings, 'diversity_real', diversity, real_reference,
                                           seed=seed)
    if 'memorization' in metrics and real_rest is not None and len(real_rest) >= 2:
        rest = real_rest[:MAX_MEMORIZATION_REFERENCE]
        out['memorization'] = _timed(timings, 'memorization', memorization_score, fake, rest,
                                     real_reference)
    if 'sharpness' in metrics:
        out.update(_timed(timings, 'sharpness', sharpness_ratio, fake, real_reference))
    wanted = [m for m in metrics if m in INCEPTION_METRICS]
    if wanted:
        if real_features is None:
            raise ValueError('%s need the Inception features of the real images'
                             % ', '.join(wanted))
        if fake_features is None:
            fake_features, _ = _timed(timings, 'inception_features', inception_features, fake)
        out.update(_timed(timings, 'inception_scores', inception_scores, real_features,
                          fake_features, wanted, seed=seed))
    out['timings'] = timings
    return out


class GeneratorEvaluation:
    """Training's evaluation, the ``eval_fn`` of :class:`~gluoncv_gan.estimator.EvaluationHandler`:
    ``num_samples`` images of the :func:`evaluation_latents` against the :func:`real_subset`
    (SWD, face rate, diversity, sharpness), and against the Inception features of all the real
    images (FID, KID, precision/recall) when ``metrics`` names them, as
    :func:`evaluate_images` measures for ``python -m gluoncv_gan.evaluate``.

    Parameters
    ----------
    real_images : numpy.ndarray
        uint8 NHWC training images.
    num_samples, seed : int
        Images per evaluation (generated, and real ones compared with); seed of the latents,
        of the real subset and of the metrics.
    metrics : sequence of str
        Among ``swd`` (the project's own set), ``fid``, ``kid``, ``pr``.
    real_features : numpy.ndarray or None
        Inception features of ``real_images``, needed for ``fid``, ``kid`` and ``pr``.
    """

    # what an evaluation keeps of evaluate_images' result (a comparison row too: compare.py)
    KEYS = ('swd', 'swd_levels', 'face_rate', 'diversity', 'sharpness', 'fid', 'kid', 'kid_std',
            'precision', 'recall')

    def __init__(self, real_images, num_samples, seed=0, metrics=('swd',), real_features=None):
        self.num_samples, self.seed, self.real_features = num_samples, seed, real_features
        self.real = np.asarray(real_subset(real_images, num_samples, seed))
        self.inception_names = tuple(m for m in INCEPTION_METRICS if m in metrics)
        if self.inception_names and real_features is None:
            raise ValueError('%s need the Inception features of the real images'
                             % ', '.join(self.inception_names))
        self.best_by = 'fid' if 'fid' in metrics else 'swd'

    def real_face_rate(self):
        """Face-detection rate of the real subset."""
        return face_detection_rate(self.real)

    def __call__(self, generator, nz, ctx):
        fake = sample_images(generator, evaluation_latents(self.num_samples, nz, self.seed),
                             ctx=ctx)
        result = evaluate_images(fake, self.real, seed=self.seed, face_rate_real=False,
                                 diversity_real=False, real_features=self.real_features,
                                 metrics=('swd', 'face', 'diversity', 'sharpness')
                                 + self.inception_names)
        return {key: result[key] for key in self.KEYS if key in result}
