"""Sample diversity: a mode-collapse alarm.

The score is the mean RMS pixel distance (RGB in ``[0, 1]``) between the images of seeded
random disjoint pairs (more rounds of pairs only when more than ``N // 2`` are asked for). Read
it against real images at the same resolution (0.36-0.37 for 64x64 LFW): a collapsed generator
scores 0, uniform noise about 0.41; see docs/evaluation.md#the-metrics.
"""
import numpy as np

from .common import check_images

__all__ = ['random_pairs', 'pair_distances', 'diversity', 'Diversity']

_CHUNK_PAIRS = 512


def random_pairs(num_images, num_pairs, seed=0):
    """Indices of random pairs, disjoint within each round of ``num_images // 2`` pairs.

    Parameters
    ----------
    num_images : int
        Number of images to pair (at least 2).
    num_pairs : int
        Number of pairs wanted.
    seed : int, optional
        Seed of the permutations.

    Returns
    -------
    numpy.ndarray
        int array of shape ``(num_pairs, 2)``; the two entries of a row differ.
    """
    if num_images < 2 or num_pairs < 1:
        raise ValueError('need at least 2 images and 1 pair; got %s images and %s pairs.'
                         % (num_images, num_pairs))
    per_round = num_images // 2
    rounds = -(-num_pairs // per_round)
    rng = np.random.RandomState(seed)
    perms = np.argsort(rng.random_sample((rounds, num_images)), axis=1)
    pairs = perms[:, :2 * per_round].reshape(-1, 2)
    return pairs[:num_pairs]


def pair_distances(images, pairs):
    """RMS distance in ``[0, 1]`` pixel scale for each pair of images.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 array ``(N, H, W, 3)``.
    pairs : numpy.ndarray
        int array ``(P, 2)`` of image indices.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(P,)``.
    """
    flat = images.reshape(len(images), -1)
    out = np.empty(len(pairs), dtype=np.float64)
    for start in range(0, len(pairs), _CHUNK_PAIRS):  # bounded memory, vectorised inside
        chunk = pairs[start:start + _CHUNK_PAIRS]
        diff = flat[chunk[:, 0]].astype(np.float32) - flat[chunk[:, 1]]
        out[start:start + len(chunk)] = np.einsum('ij,ij->i', diff, diff, dtype=np.float64)
    return np.sqrt(out / flat.shape[1]) / 255.0


def diversity(images, num_pairs=None, seed=0):
    """Mean RMS pixel distance between random pairs of images.

    Parameters
    ----------
    images : numpy.ndarray or mxnet.nd.NDArray
        uint8 RGB ``(N, H, W, 3)`` or float ``(N, 3, H, W)`` in ``[-1, 1]``,
        at least 2 images.
    num_pairs : int, optional
        Number of pairs; defaults to ``N // 2`` (every image used at most once).
    seed : int, optional
        Seed of the pairing.

    Returns
    -------
    float
        Mean distance in ``[0, 1]``; 0 for identical images.
    """
    images = check_images(images, min_count=2)
    if num_pairs is None:
        num_pairs = len(images) // 2
    return float(pair_distances(images, random_pairs(len(images), num_pairs, seed)).mean())


class Diversity:
    """Accumulating diversity metric with an ``mx.metric.EvalMetric``-like interface.

    Images are kept (uint8) so that pairs are drawn across all batches, which
    gives the same value as :func:`diversity` on the concatenated images.

    Parameters
    ----------
    name : str, optional
        Name returned by :meth:`get`.
    num_pairs : int, optional
        Passed to :func:`diversity`.
    seed : int, optional
        Passed to :func:`diversity`.
    """

    def __init__(self, name='diversity', num_pairs=None, seed=0):
        self.name = name
        self.num_pairs = num_pairs
        self.seed = seed
        self.reset()

    def reset(self):
        """Forget all accumulated images."""
        self._batches = []

    def update(self, images):
        """Add a batch of images (any layout accepted by :func:`diversity`)."""
        batch = check_images(images)
        if self._batches and self._batches[0].shape[1:] != batch.shape[1:]:
            raise ValueError('batch has images of shape %s, earlier batches %s; all images must '
                             'share one size.' % (batch.shape[1:], self._batches[0].shape[1:]))
        self._batches.append(batch)

    def get(self):
        """Return ``(name, diversity)``; NaN while fewer than 2 images were added."""
        if sum(len(b) for b in self._batches) < 2:
            return self.name, float('nan')
        return self.name, diversity(np.concatenate(self._batches), self.num_pairs, self.seed)
