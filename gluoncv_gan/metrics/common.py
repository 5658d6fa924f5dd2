"""Input handling shared by the GAN metrics.

Every metric works on a batch of RGB images stored as ``uint8`` numpy arrays
of shape ``(N, H, W, 3)``.  Generator output (an ``mx.nd.NDArray`` of floats in
``[-1, 1]`` with layout ``NCHW``) is accepted too and converted once by
:func:`to_uint8_nhwc`.
"""
import numpy as np

__all__ = ['to_uint8_nhwc', 'check_images', 'to_unit_float']

# Float input is expected in [-1, 1]; anything beyond this bound is almost
# certainly data in another scale (e.g. [0, 255]) and is refused rather than
# silently clipped to black/white.
_FLOAT_RANGE_LIMIT = 2.0


def _is_ndarray_like(x):
    """Return True for MXNet NDArrays (anything with ``asnumpy``)."""
    return hasattr(x, 'asnumpy') and callable(x.asnumpy)


def _check_uint8_nhwc(x, name):
    """Validate the shape of a uint8 batch; return it as a contiguous array."""
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(
            '{} must have shape (N, H, W, 3) for uint8 RGB images; got shape {}. '
            'Add a batch axis with x[None] for one image, stack grayscale to RGB '
            'with np.repeat(x[..., None], 3, axis=-1), or transpose NCHW data with '
            'x.transpose(0, 2, 3, 1).'.format(name, x.shape))
    return np.ascontiguousarray(x)


def _float_nchw_to_uint8_nhwc(x, name):
    """Map float NCHW data in [-1, 1] to uint8 NHWC with rounding and clipping."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(
            '{} must have shape (N, 3, H, W) for float images in [-1, 1]; got shape {}. '
            'Transpose NHWC float data with x.transpose((0, 3, 1, 2)).'.format(name, x.shape))
    if not np.all(np.isfinite(x)):
        raise ValueError('{} contains NaN or infinite values; check the generator output.'
                         .format(name))
    if x.size and np.abs(x).max() > _FLOAT_RANGE_LIMIT:
        raise ValueError(
            '{} is float but spans [{:.3g}, {:.3g}], not [-1, 1]. Pass uint8 images for '
            '[0, 255] data, or rescale with x / 127.5 - 1.'.format(name, x.min(), x.max()))
    scaled = np.rint((x.astype(np.float32) + 1.0) * 127.5)
    return np.ascontiguousarray(np.clip(scaled, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1))


def to_uint8_nhwc(x, name='images'):
    """Convert a batch of images to uint8 ``(N, H, W, 3)`` RGB.

    Parameters
    ----------
    x : numpy.ndarray or mxnet.nd.NDArray
        Either uint8 RGB images of shape ``(N, H, W, 3)`` (returned unchanged,
        made contiguous if needed) or float images in ``[-1, 1]`` with shape
        ``(N, 3, H, W)``, as produced by a ``tanh`` generator.  Float values are
        mapped with ``round((x + 1) * 127.5)`` and clipped to ``[0, 255]``.
    name : str, optional
        Name of the argument, used in error messages.

    Returns
    -------
    numpy.ndarray
        uint8 array of shape ``(N, H, W, 3)``.

    Raises
    ------
    TypeError
        If ``x`` is neither a numpy array nor an NDArray, or has an integer
        dtype other than uint8.
    ValueError
        If the shape does not match the layout of its dtype, or float data
        contains non-finite values or is clearly outside ``[-1, 1]``.
    """
    if _is_ndarray_like(x):
        x = x.asnumpy()
    if not isinstance(x, np.ndarray):
        raise TypeError(
            '{} must be a numpy array (uint8, N x H x W x 3) or an mx.nd.NDArray '
            '(float in [-1, 1], N x 3 x H x W); got {}. Convert lists with np.stack.'
            .format(name, type(x).__name__))
    if x.dtype == np.uint8:
        return _check_uint8_nhwc(x, name)
    if np.issubdtype(x.dtype, np.floating):
        return _float_nchw_to_uint8_nhwc(x, name)
    raise TypeError(
        '{} has dtype {}; expected uint8 (N, H, W, 3) in [0, 255] or float (N, 3, H, W) '
        'in [-1, 1]. Convert integer pixel data with x.astype(np.uint8).'
        .format(name, x.dtype))


def check_images(x, name='images', min_count=1):
    """Convert with :func:`to_uint8_nhwc` and require at least ``min_count`` images.

    Parameters
    ----------
    x : numpy.ndarray or mxnet.nd.NDArray
        Images in any layout accepted by :func:`to_uint8_nhwc`.
    name : str, optional
        Name of the argument, used in error messages.
    min_count : int, optional
        Smallest acceptable number of images.

    Returns
    -------
    numpy.ndarray
        uint8 array of shape ``(N, H, W, 3)`` with ``N >= min_count``.
    """
    images = to_uint8_nhwc(x, name)
    if len(images) < min_count:
        raise ValueError('{} holds {} image(s); this metric needs at least {}. '
                         'Pass a larger batch.'.format(name, len(images), min_count))
    return images


def to_unit_float(images):
    """Scale uint8 images to float32 in ``[0, 1]``.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 array of any shape.

    Returns
    -------
    numpy.ndarray
        float32 array of the same shape.
    """
    return images.astype(np.float32) * np.float32(1.0 / 255.0)
