"""Sliced Wasserstein distance (SWD) between two image sets on Laplacian pyramids.

The metric of Karras et al., "Progressive Growing of GANs" (ICLR 2018), section 5 and appendix
D: 128 7x7x3 neighbourhoods per image and pyramid level (5x5 binomial filter, down to the 16x16
residual), normalised per colour channel and set, compared along 4 x 128 random directions;
see docs/evaluation.md#the-metrics. Patch positions hash each image's bytes, so the result does
not depend on image order; pyramids are banded matrix products (identical to ``cv2.pyrDown`` /
``cv2.pyrUp``); projections are sorted as 16-bit codes (float sorting took 30-40 s for 2,000
images on two cores) unless ``exact=True``.
"""
import numpy as np

from .common import check_images

__all__ = ['laplacian_pyramid', 'sliced_wasserstein_distance', 'SlicedWassersteinDistance']

BINOMIAL_KERNEL = np.array([1, 4, 6, 4, 1], dtype=np.float32) / 16
NHOOD_SIZE = 7
NHOODS_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128
MIN_RESOLUTION = 16
SCALE = 1e3
_QUANT_LEVELS = 2 ** 16

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_MIX1 = _U64(0xBF58476D1CE4E5B9)
_MIX2 = _U64(0x94D049BB133111EB)


# ----------------------------------------------------------------------------
# Laplacian pyramid
# ----------------------------------------------------------------------------
def _reflect101(index, n):
    """Map indices outside ``[0, n)`` back inside by reflect-101 (``dcb|abcd|cba``)."""
    index = np.abs(index)
    return np.where(index >= n, 2 * (n - 1) - index, index)


def _blur_matrix(n):
    """(n, n) matrix applying the 5-tap binomial filter with reflect-101 borders."""
    rows = np.repeat(np.arange(n), len(BINOMIAL_KERNEL))
    taps = np.tile(np.arange(len(BINOMIAL_KERNEL)) - 2, n)
    matrix = np.zeros((n, n), dtype=np.float64)
    np.add.at(matrix, (rows, _reflect101(rows + taps, n)), np.tile(BINOMIAL_KERNEL, n))
    return matrix


def _down_matrix(n):
    """(n // 2, n) matrix of ``cv2.pyrDown`` along one axis: blur, keep even samples."""
    return _blur_matrix(n)[::2].astype(np.float32)


def _up_matrix(m):
    """(2m, m) matrix of ``cv2.pyrUp`` along one axis: zero insertion, blur, gain 2.

    Applying the reflect-101 blur to the zero-inserted signal reproduces
    OpenCV's border handling exactly.
    """
    return (2 * _blur_matrix(2 * m)[:, ::2]).astype(np.float32)


def _apply_separable(x, rows_matrix, cols_matrix):
    """Compute ``rows_matrix @ image @ cols_matrix.T`` for every plane of (N, C, H, W)."""
    n, c, h, w = x.shape
    out = (x.reshape(-1, w) @ cols_matrix.T).reshape(n * c, h, -1)
    return np.matmul(rows_matrix, out).reshape(n, c, rows_matrix.shape[0], -1)


def _pyr_down(x):
    """``cv2.pyrDown`` of every plane of a float32 batch (N, C, H, W)."""
    return _apply_separable(x, _down_matrix(x.shape[2]), _down_matrix(x.shape[3]))


def _pyr_up(x):
    """``cv2.pyrUp`` of every plane of a float32 batch (N, C, H, W)."""
    return _apply_separable(x, _up_matrix(x.shape[2]), _up_matrix(x.shape[3]))


def _num_levels(height, width, min_resolution):
    """Number of pyramid levels for an image, checking that it halves cleanly."""
    if min_resolution < 2:
        raise ValueError('min_resolution must be at least 2; got %s.' % (min_resolution,))
    if min(height, width) < min_resolution:
        raise ValueError('Images of size %sx%s are smaller than the coarsest pyramid level '
                         '(%sx%s); pass larger images or a smaller min_resolution.'
                         % (height, width, min_resolution, min_resolution))
    levels = 1
    while min(height, width) // 2 >= min_resolution:
        if height % 2 or width % 2:
            raise ValueError('Image size %sx%s cannot be halved evenly on the way down to '
                             '%sx%s; resize to a power-of-two multiple of min_resolution, '
                             'e.g. 64x64.' % (height, width, min_resolution, min_resolution))
        height, width, levels = height // 2, width // 2, levels + 1
    return levels


def laplacian_pyramid(images, min_resolution=MIN_RESOLUTION):
    """Build the Laplacian pyramids of a batch of images.

    Parameters
    ----------
    images : numpy.ndarray or mxnet.nd.NDArray
        uint8 RGB images ``(N, H, W, 3)`` (or float NCHW in ``[-1, 1]``).
    min_resolution : int, optional
        Size of the coarsest level; halving stops once the next level would be
        smaller than this.

    Returns
    -------
    list of numpy.ndarray
        float32 arrays of shape ``(N, 3, h, w)`` (channel first), from full
        resolution down.  All levels are band-pass images except the last,
        which is the low-pass residual.  ``level[k] + pyrUp(gaussian[k + 1])``
        gives back ``gaussian[k]``, so the pyramid reconstructs the input.
    """
    images = check_images(images)
    levels = _num_levels(images.shape[1], images.shape[2], min_resolution)
    gaussian = np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)
    pyramid = []
    for _ in range(levels - 1):
        smaller = _pyr_down(gaussian)
        pyramid.append(gaussian - _pyr_up(smaller))
        gaussian = smaller
    pyramid.append(gaussian)
    return pyramid


# ----------------------------------------------------------------------------
# Descriptors at order-independent positions
# ----------------------------------------------------------------------------
def _splitmix64(x):
    """Vectorised splitmix64 finaliser: a well-mixed 64-bit hash of uint64 input."""
    with np.errstate(over='ignore'):
        x = x + _GOLDEN
        x = (x ^ (x >> _U64(30))) * _MIX1
        x = (x ^ (x >> _U64(27))) * _MIX2
    return x ^ (x >> _U64(31))


def image_keys(images, seed):
    """One 64-bit key per image from its bytes and the seed (vectorised).

    The bytes are read as 64-bit words, each multiplied by an odd random weight
    drawn from ``seed``, summed modulo 2**64 and mixed with splitmix64.  The
    key of an image does not depend on the other images or on their order.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 array ``(N, ...)``.
    seed : int
        Non-negative seed.

    Returns
    -------
    numpy.ndarray
        uint64 array of shape ``(N,)``.
    """
    flat = images.reshape(len(images), -1)
    pad = (-flat.shape[1]) % 8
    if pad:
        flat = np.pad(flat, ((0, 0), (0, pad)))
    words = np.ascontiguousarray(flat).view(np.uint64)
    rng = np.random.RandomState(seed)
    weights = rng.randint(0, 2 ** 63, size=words.shape[1], dtype=np.uint64) * _U64(2) + _U64(1)
    with np.errstate(over='ignore'):
        total = (words * weights).sum(axis=1, dtype=np.uint64)
    return _splitmix64(total ^ _U64(seed))


def _patch_positions(keys, level, count, height, width, size):
    """Top-left corners ``(rows, cols)``, each (N, count), of the patches of one level."""
    salt = _splitmix64(np.arange(count, dtype=np.uint64) + _U64(level * count))
    hashes = _splitmix64(keys[:, None] ^ salt[None, :])
    rows = (hashes >> _U64(32)) % _U64(height - size + 1)
    cols = (hashes & _U64(0xFFFFFFFF)) % _U64(width - size + 1)
    return rows.astype(np.intp), cols.astype(np.intp)


def _extract_descriptors(level_images, rows, cols, size):
    """Gather neighbourhoods from (N, C, h, w) with one fancy-indexing call.

    Returns float32 of shape (N * P, C * size * size), channel-major per row.
    """
    windows = np.lib.stride_tricks.sliding_window_view(level_images, (size, size), axis=(2, 3))
    index = np.arange(len(level_images))[:, None]
    patches = windows[index, :, rows, cols]  # (N, P, C, size, size)
    return patches.reshape(rows.size, -1)


def _normalise(descriptors, channels=3):
    """Zero mean, unit std per colour channel over a whole descriptor set, in place.

    ``descriptors`` is (M, C * K) float32, channel-major per row.  Sums are
    accumulated in float64.  A channel without spread (e.g. flat images) is
    only centred.
    """
    per_channel = descriptors.shape[1] // channels
    count = descriptors.shape[0] * per_channel
    sums = np.einsum('ij->j', descriptors, dtype=np.float64)
    mean = sums.reshape(channels, per_channel).sum(axis=1) / count
    descriptors -= np.repeat(mean, per_channel).astype(np.float32)
    squares = np.einsum('ij,ij->j', descriptors, descriptors, dtype=np.float64)
    std = np.sqrt(squares.reshape(channels, per_channel).sum(axis=1) / count)
    std[std == 0] = 1.0
    descriptors *= np.repeat(1.0 / std, per_channel).astype(np.float32)
    return descriptors


def level_descriptors(level_images, keys, level, nhoods_per_image=NHOODS_PER_IMAGE,
                      nhood_size=NHOOD_SIZE):
    """Normalised descriptors of one pyramid level of one image set.

    Parameters
    ----------
    level_images : numpy.ndarray
        float32 pyramid level ``(N, 3, h, w)``.
    keys : numpy.ndarray
        uint64 per-image keys from :func:`image_keys`.
    level : int
        Level index, mixed into the positions so that levels use different
        patches.
    nhoods_per_image : int, optional
        Neighbourhoods per image.
    nhood_size : int, optional
        Neighbourhood side length.

    Returns
    -------
    numpy.ndarray
        float32 array ``(N * nhoods_per_image, 3 * nhood_size ** 2)``.
    """
    height, width = level_images.shape[2:]
    rows, cols = _patch_positions(keys, level, nhoods_per_image, height, width, nhood_size)
    return _normalise(_extract_descriptors(level_images, rows, cols, nhood_size),
                      level_images.shape[1])


# ----------------------------------------------------------------------------
# Sliced Wasserstein distance
# ----------------------------------------------------------------------------
def _random_directions(rng, count, dim):
    """``count`` random unit vectors in ``dim`` dimensions, shape (count, dim)."""
    dirs = rng.standard_normal((count, dim))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return dirs.astype(np.float32)


def _sorted_codes(proj_a, proj_b, codes_a, codes_b):
    """Quantise both projection sets on a shared per-row 16-bit grid and sort them.

    The grid of each row (direction) spans the joint range of both sets with
    2**16 levels; values are floored onto it, so each moves by less than one
    step.  ``proj_a`` and ``proj_b`` (d, M) are overwritten; the sorted codes
    are written to the uint16 buffers ``codes_a`` and ``codes_b``.

    Returns
    -------
    numpy.ndarray
        The grid step of each row (float64, shape (d,)).
    """
    low = np.minimum(proj_a.min(axis=1), proj_b.min(axis=1))
    high = np.maximum(proj_a.max(axis=1), proj_b.max(axis=1))
    step = (high.astype(np.float64) - low) / (_QUANT_LEVELS - 1)
    step[step == 0] = 1.0
    scale = (1.0 / step).astype(np.float32)[:, None]
    for proj, codes in ((proj_a, codes_a), (proj_b, codes_b)):
        proj -= low[:, None]
        proj *= scale
        np.copyto(codes, proj, casting='unsafe')  # truncation = floor for values >= 0
        codes.sort(axis=1, kind='stable')  # numpy sorts 16-bit integers by radix sort
    return step


def _abs_diff_row_sums(codes_a, codes_b):
    """Row sums of ``|a - b|`` for two uint16 arrays of equal shape; overwrites ``codes_a``.

    Uses ``|a - b| = a + b - 2 min(a, b)`` to stay in 16 bits (no temporary).
    """
    total = codes_a.sum(axis=1, dtype=np.int64) + codes_b.sum(axis=1, dtype=np.int64)
    return total - 2 * np.minimum(codes_a, codes_b, out=codes_a).sum(axis=1, dtype=np.int64)


def _wasserstein_sorted(sorted_a, sorted_b):
    """Exact 1-D Wasserstein-1 distance per row between sorted samples.

    Rows may hold different numbers of samples (m, n): the inverse CDFs are
    step functions, so integrating ``|F_a^-1 - F_b^-1|`` over the union of the
    grids ``i / m`` and ``j / n`` is exact.  Integer codes are subtracted as
    int32, floats in their own precision.  Returns float64 of shape (d,).
    """
    m, n = sorted_a.shape[1], sorted_b.shape[1]
    dtype = np.int32 if sorted_a.dtype.kind in 'ui' else np.result_type(sorted_a, sorted_b)
    if m == n:
        diff = np.subtract(sorted_a, sorted_b, dtype=dtype)
        return np.abs(diff, out=diff).sum(axis=1, dtype=np.float64) / m
    grid = np.union1d(np.arange(m + 1) / m, np.arange(n + 1) / n)
    mids = (grid[:-1] + grid[1:]) / 2
    index_a = np.minimum((mids * m).astype(np.intp), m - 1)
    index_b = np.minimum((mids * n).astype(np.intp), n - 1)
    diff = np.subtract(sorted_a[:, index_a], sorted_b[:, index_b], dtype=dtype)
    return np.abs(diff, out=diff) @ np.diff(grid)


def _direction_distances(proj_a, proj_b, codes_a, codes_b, exact):
    """Wasserstein-1 distance along each direction from projections (d, M_a), (d, M_b).

    All four arrays are overwritten; ``codes_a``/``codes_b`` are uint16
    scratch buffers of the same shapes as the projections.
    """
    if exact:
        proj_a.sort(axis=1)
        proj_b.sort(axis=1)
        return _wasserstein_sorted(proj_a, proj_b)
    step = _sorted_codes(proj_a, proj_b, codes_a, codes_b)
    if codes_a.shape == codes_b.shape:
        return _abs_diff_row_sums(codes_a, codes_b) / codes_a.shape[1] * step
    return _wasserstein_sorted(codes_a, codes_b) * step


def sliced_wasserstein(desc_a, desc_b, rng, dir_repeats=DIR_REPEATS,
                       dirs_per_repeat=DIRS_PER_REPEAT, exact=False):
    """Sliced Wasserstein-1 distance between two descriptor sets.

    Parameters
    ----------
    desc_a, desc_b : numpy.ndarray
        float32 descriptor sets ``(M_a, D)`` and ``(M_b, D)``.
    rng : numpy.random.RandomState
        Source of the random directions.
    dir_repeats, dirs_per_repeat : int, optional
        Number of repeats and of directions per repeat.
    exact : bool, optional
        Sort the float projections instead of their 16-bit codes.

    Returns
    -------
    float
        Distance averaged over all directions (not scaled by 1000).
    """
    # Work buffers (100+ MB each for a few thousand images) are allocated once
    # and reused across repeats instead of being allocated and page-faulted
    # every time.
    proj = [np.empty((dirs_per_repeat, len(d)), dtype=np.float32) for d in (desc_a, desc_b)]
    codes = [np.empty(p.shape, dtype=np.uint16) for p in proj] if not exact else [None, None]
    dists = []
    for _ in range(dir_repeats):
        dirs = _random_directions(rng, dirs_per_repeat, desc_a.shape[1])
        np.matmul(dirs, desc_a.T, out=proj[0])
        np.matmul(dirs, desc_b.T, out=proj[1])
        dists.append(_direction_distances(proj[0], proj[1], codes[0], codes[1], exact))
    return float(np.mean(dists))


def _check_inputs(real, fake, seed, min_resolution, nhood_size):
    """Validate the arguments of an SWD computation; return the images as uint8 NHWC."""
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 32:
        raise ValueError('seed must be an integer in [0, 2**32); got %r.' % (seed,))
    real = check_images(real, 'real', min_count=2)
    fake = check_images(fake, 'fake', min_count=2)
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError('real and fake images differ in size (%s vs %s); resize one set to '
                         'the other.' % (real.shape[1:3], fake.shape[1:3]))
    height, width = real.shape[1:3]
    coarsest = min(height, width) >> (_num_levels(height, width, min_resolution) - 1)
    if coarsest < nhood_size:
        raise ValueError('nhood_size %s does not fit the coarsest %sx%s level; lower nhood_size '
                         'or raise min_resolution.' % (nhood_size, coarsest, coarsest))
    return real, fake


def sliced_wasserstein_distance(real, fake, seed=0, nhoods_per_image=NHOODS_PER_IMAGE,
                                nhood_size=NHOOD_SIZE, dir_repeats=DIR_REPEATS,
                                dirs_per_repeat=DIRS_PER_REPEAT,
                                min_resolution=MIN_RESOLUTION, exact=False):
    """Sliced Wasserstein distance between real and generated images (x1e3).

    Parameters
    ----------
    real, fake : numpy.ndarray or mxnet.nd.NDArray
        Image sets of the same resolution: uint8 ``(N, H, W, 3)`` or float
        ``(N, 3, H, W)`` in ``[-1, 1]``.  Their sizes may differ.  Use a few
        thousand images per set for stable numbers; small sets are noisy and
        biased upwards.
    seed : int, optional
        Non-negative seed of the patch positions and projection directions.
    nhoods_per_image : int, optional
        Descriptors taken per image and level (paper: 128).
    nhood_size : int, optional
        Side of the square neighbourhood (paper: 7).
    dir_repeats, dirs_per_repeat : int, optional
        Random projections: repeats and directions per repeat (paper: 4, 128).
    min_resolution : int, optional
        Resolution of the coarsest level, the low-pass residual (paper: 16).
    exact : bool, optional
        Sort float projections instead of 16-bit codes (slower; the default
        differs from it by at most one code step per direction).

    Returns
    -------
    dict
        ``swd``: mean over levels; ``swd_levels``: per-level values from the
        finest level down; ``resolutions``: the matching level sizes.  Values
        are multiplied by 1000.

    Raises
    ------
    ValueError
        If the sets differ in image size, hold fewer than 2 images, are too
        small for the pyramid, or the seed is not in ``[0, 2**32)``.
    """
    real, fake = _check_inputs(real, fake, seed, min_resolution, nhood_size)
    keys_real, keys_fake = image_keys(real, seed), image_keys(fake, seed)
    pyr_real = laplacian_pyramid(real, min_resolution)
    pyr_fake = laplacian_pyramid(fake, min_resolution)
    rng = np.random.RandomState(seed)
    values, resolutions = [], []
    for level, (lev_real, lev_fake) in enumerate(zip(pyr_real, pyr_fake)):
        desc_real = level_descriptors(lev_real, keys_real, level, nhoods_per_image, nhood_size)
        desc_fake = level_descriptors(lev_fake, keys_fake, level, nhoods_per_image, nhood_size)
        dist = sliced_wasserstein(desc_real, desc_fake, rng, dir_repeats, dirs_per_repeat, exact)
        values.append(dist * SCALE)
        resolutions.append(int(lev_real.shape[2]))
    return dict(swd=float(np.mean(values)), swd_levels=values, resolutions=resolutions)


class SlicedWassersteinDistance:
    """Accumulating SWD metric with an ``mx.metric.EvalMetric``-like interface.

    Real and generated images are added in batches with :meth:`update`; the
    distance is computed over everything seen on :meth:`get`.  The metric
    keeps the uint8 images, not descriptors: at 64x64 an image is 12 KB,
    whereas its descriptors (128 per level, 147 floats each, 3 levels) take
    about 225 KB.

    Parameters
    ----------
    name : str, optional
        Name returned by :meth:`get`.
    seed : int, optional
        Seed passed to :func:`sliced_wasserstein_distance`.
    **kwargs
        Further options of :func:`sliced_wasserstein_distance`.
    """

    def __init__(self, name='swd', seed=0, **kwargs):
        self.name = name
        self.seed = seed
        self.kwargs = kwargs
        self.reset()

    def reset(self):
        """Forget all accumulated images."""
        self._images = {'real': [], 'fake': []}
        self._result = None

    def update(self, real=None, fake=None):
        """Add a batch of real and/or generated images.

        Parameters
        ----------
        real, fake : numpy.ndarray or mxnet.nd.NDArray, optional
            Batches in any layout accepted by
            :func:`~gluoncv_gan.metrics.common.to_uint8_nhwc`.
        """
        for key, batch in (('real', real), ('fake', fake)):
            if batch is None:
                continue
            batch = check_images(batch, key)
            seen = self._images['real'] + self._images['fake']
            if seen and seen[0].shape[1:] != batch.shape[1:]:
                raise ValueError('%s batch has images of shape %s, earlier batches %s; all '
                                 'images must share one size.'
                                 % (key, batch.shape[1:], seen[0].shape[1:]))
            self._images[key].append(batch)
            self._result = None

    def num_images(self):
        """Return ``(num_real, num_fake)`` accumulated so far."""
        return tuple(sum(len(b) for b in self._images[key]) for key in ('real', 'fake'))

    def _compute(self):
        """Full result dict, or None when a set is still empty."""
        if not all(self.num_images()):
            return None
        if self._result is None:
            real = np.concatenate(self._images['real'])
            fake = np.concatenate(self._images['fake'])
            self._result = sliced_wasserstein_distance(real, fake, seed=self.seed, **self.kwargs)
        return self._result

    def get(self):
        """Return ``(name, swd)``; the value is NaN until both sets have images."""
        result = self._compute()
        return self.name, float('nan') if result is None else result['swd']

    def get_levels(self):
        """Return ``[(resolution, swd), ...]`` from the finest level down (empty if no data)."""
        result = self._compute()
        if result is None:
            return []
        return list(zip(result['resolutions'], result['swd_levels']))
