"""Memorisation check: are generated samples copies of training images?

Images are compared as 32x32 RGB thumbnails in ``[0, 1]`` (RMS distance). A sample counts as a
copy when its nearest/second-nearest training distance ratio ``d1 / d2`` is at or under the
``copy_quantile`` of held-out real images' ratios; the check passes when at most
``max_copied_fraction`` of the samples are copies. Why the ratio and not ``d1``:
docs/evaluation.md#the-metrics.
"""
import cv2
import numpy as np

from .common import check_images

__all__ = ['thumbnails', 'nearest_neighbour_distances', 'memorization_score']

THUMB_SIZE = 32
COPY_QUANTILE = 0.01
MAX_COPIED_FRACTION = 0.05
MIN_HELDOUT = 10
_CHUNK = 1024


def thumbnails(images, size=THUMB_SIZE):
    """Area-averaged ``size`` x ``size`` RGB thumbnails in ``[0, 1]``, flattened.

    Parameters
    ----------
    images : numpy.ndarray or mxnet.nd.NDArray
        uint8 RGB ``(N, H, W, 3)`` or float ``(N, 3, H, W)`` in ``[-1, 1]``.
    size : int, optional
        Thumbnail side.

    Returns
    -------
    numpy.ndarray
        float32 array ``(N, size * size * 3)``.
    """
    images = check_images(images)
    n, height, width = images.shape[:3]
    if height % size == 0 and width % size == 0:
        blocks = images.reshape(n, size, height // size, size, width // size, 3)
        small = blocks.mean(axis=(2, 4), dtype=np.float32)
    else:  # non-integer factor: OpenCV's area interpolation, one call per image
        small = np.stack([cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
                          for image in images]).astype(np.float32)
    return small.reshape(n, -1) / np.float32(255)


def _candidate_indices(query_feats, train_feats, k):
    """Indices (N, k) of the k nearest training rows per query (squared L2, chunked)."""
    train_sq = np.einsum('ij,ij->i', train_feats, train_feats)
    nearest = np.empty((len(query_feats), k), dtype=np.intp)
    for start in range(0, len(query_feats), _CHUNK):  # bounds the (chunk, N_train) matrix
        block = query_feats[start:start + _CHUNK]
        # |q - t|^2 = |q|^2 - 2 q.t + |t|^2; |q|^2 is the same for a whole row
        scores = train_sq[None, :] - 2 * (block @ train_feats.T)
        if k == 1:
            nearest[start:start + len(block), 0] = scores.argmin(axis=1)
        else:
            nearest[start:start + len(block)] = np.argpartition(scores, k - 1, axis=1)[:, :k]
    return nearest


def _exact_distances(query_feats, train_feats, index):
    """RMS distances (N, k) in float64 from each query to the candidates in ``index``."""
    diff = query_feats[:, None, :].astype(np.float64) - train_feats[index]
    return np.sqrt(np.einsum('ijk,ijk->ij', diff, diff) / query_feats.shape[1])


def nearest_neighbour_distances(queries, train, k=1, size=THUMB_SIZE, return_index=False,
                                train_features=None):
    """Distances from each query image to its ``k`` nearest training images.

    Candidates are found with float32 matrix products in chunks; their
    distances are then recomputed directly in float64 (so an exact copy gives
    exactly 0) and sorted.

    Parameters
    ----------
    queries, train : numpy.ndarray or mxnet.nd.NDArray
        Image sets (any layout accepted by
        :func:`~gluoncv_gan.metrics.common.to_uint8_nhwc`); the two sets may
        have different resolutions since both are reduced to thumbnails.
    k : int, optional
        Number of neighbours.
    size : int, optional
        Thumbnail side.
    return_index : bool, optional
        Also return the indices of the neighbours in ``train``.
    train_features : numpy.ndarray, optional
        ``thumbnails(train, size)``, when the caller keeps them for repeated searches.

    Returns
    -------
    numpy.ndarray or tuple
        float64 RMS distances in ``[0, 1]`` pixel scale, shape ``(N,)`` for
        ``k == 1`` and ``(N, k)`` otherwise, nearest first; plus the matching
        int indices when ``return_index`` is True.
    """
    train = check_images(train, 'train', min_count=k)
    query_feats = thumbnails(check_images(queries, 'queries'), size)
    train_feats = thumbnails(train, size) if train_features is None else train_features
    index = _candidate_indices(query_feats, train_feats, k)
    dists = _exact_distances(query_feats, train_feats, index)
    order = np.argsort(dists, axis=1)
    dists = np.take_along_axis(dists, order, axis=1)
    index = np.take_along_axis(index, order, axis=1)
    if k == 1:
        dists, index = dists[:, 0], index[:, 0]
    return (dists, index) if return_index else dists


def _neighbour_ratio(dists):
    """``d1 / d2`` per row of (N, 2) distances; 0 when ``d1 == 0``, 1 when both are 0."""
    d1, d2 = dists[:, 0], dists[:, 1]
    return np.where(d2 > 0, d1 / np.where(d2 > 0, d2, 1.0), 1.0)


def memorization_score(fake, train, heldout, size=THUMB_SIZE, copy_quantile=COPY_QUANTILE,
                       max_copied_fraction=MAX_COPIED_FRACTION):
    """Compare generated samples and held-out real images by distance to the training set.

    Parameters
    ----------
    fake : numpy.ndarray or mxnet.nd.NDArray
        Generated samples.
    train : numpy.ndarray or mxnet.nd.NDArray
        Images the generator was trained on (at least 2).
    heldout : numpy.ndarray or mxnet.nd.NDArray
        Real images from the same source that were *not* trained on, at least
        10 (better several hundred, so that the 1st percentile is meaningful).
    size : int, optional
        Thumbnail side.
    copy_quantile : float, optional
        Quantile of the held-out neighbour ratios used as the copy threshold.
    max_copied_fraction : float, optional
        Largest fraction of samples under the threshold that still passes.

    Returns
    -------
    dict
        ``ratio`` (``fake_median / heldout_median``), ``fake_median`` and
        ``heldout_median`` (medians of the nearest-neighbour distance),
        ``copy_threshold`` (on the neighbour ratio ``d1 / d2``),
        ``copied_fraction`` and ``passed``
        (``copied_fraction <= max_copied_fraction``).
    """
    heldout = check_images(heldout, 'heldout', min_count=MIN_HELDOUT)
    if not 0 < copy_quantile < 1:
        raise ValueError('copy_quantile must lie in (0, 1); got %s.' % (copy_quantile,))
    fake_d = nearest_neighbour_distances(fake, train, k=2, size=size)
    heldout_d = nearest_neighbour_distances(heldout, train, k=2, size=size)
    threshold = float(np.quantile(_neighbour_ratio(heldout_d), copy_quantile))
    copied = float(np.mean(_neighbour_ratio(fake_d) <= threshold))
    fake_median, heldout_median = float(np.median(fake_d[:, 0])), float(np.median(heldout_d[:, 0]))
    return dict(ratio=fake_median / heldout_median if heldout_median > 0 else float('inf'),
                fake_median=fake_median, heldout_median=heldout_median,
                copy_threshold=threshold, copied_fraction=copied,
                passed=copied <= max_copied_fraction)
