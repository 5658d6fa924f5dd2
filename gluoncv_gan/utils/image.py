"""Image conversion, grids and image files."""
import math
import os

import cv2
import numpy as np

from .fileio import atomic_path

__all__ = ['to_uint8_images', 'make_grid', 'save_image']

# Float input is expected in [-1, 1]; anything beyond this bound is almost certainly data in
# another scale (e.g. [0, 255]) and is refused rather than silently clipped to black and white.
_FLOAT_RANGE_LIMIT = 2.0


def _channel_words(channels):
    """'3' or '1 or 3': the allowed channel counts, for messages."""
    return ' or '.join(str(c) for c in channels)


def _check_uint8_nhwc(images, name, channels):
    """Validate the shape of a uint8 batch; return it as a contiguous array."""
    if images.ndim != 4 or images.shape[-1] not in channels:
        raise ValueError(
            '%s must have shape (N, H, W, %s) for uint8 images; got shape %s. Add a batch axis '
            'with x[None] for one image, stack grayscale to RGB with '
            'np.repeat(x[..., None], 3, axis=-1), or transpose NCHW data with '
            'x.transpose(0, 2, 3, 1).' % (name, _channel_words(channels), images.shape))
    return np.ascontiguousarray(images)


def _float_nchw_to_uint8_nhwc(images, name, channels):
    """Map float NCHW data in [-1, 1] to uint8 NHWC with rounding and clipping."""
    if images.ndim != 4 or images.shape[1] not in channels:
        raise ValueError(
            '%s must have shape (N, %s, H, W) for float images in [-1, 1]; got shape %s. '
            'Transpose NHWC float data with x.transpose((0, 3, 1, 2)).'
            % (name, _channel_words(channels), images.shape))
    if not np.all(np.isfinite(images)):
        raise ValueError('%s contains NaN or infinite values; check the generator output.'
                         % (name,))
    if images.size and np.abs(images).max() > _FLOAT_RANGE_LIMIT:
        raise ValueError(
            '%s is float but spans [%.3g, %.3g], not [-1, 1]. Pass uint8 images for '
            '[0, 255] data, or rescale with x / 127.5 - 1.'
            % (name, images.min(), images.max()))
    scaled = np.rint((images.astype(np.float32) + 1.0) * 127.5)
    return np.ascontiguousarray(np.clip(scaled, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1))


def to_uint8_images(images, name='images', channels=(1, 3)):
    """Convert a batch of images to uint8 ``(N, H, W, C)``.

    Parameters
    ----------
    images : numpy.ndarray or mxnet.nd.NDArray
        Either uint8 images of shape ``(N, H, W, C)`` (returned unchanged, made contiguous if
        needed) or float images in ``[-1, 1]`` of shape ``(N, C, H, W)``, as produced by a
        ``tanh`` generator.  Float values are mapped with ``round((x + 1) * 127.5)`` and
        clipped to ``[0, 255]``.
    name : str, optional
        Name of the argument, used in error messages.
    channels : tuple of int, optional
        Accepted channel counts ``C``; ``(3,)`` accepts RGB only.

    Returns
    -------
    numpy.ndarray
        uint8 array of shape ``(N, H, W, C)``.

    Raises
    ------
    TypeError
        If ``images`` is neither a numpy array nor an NDArray, or has an integer dtype other
        than uint8.
    ValueError
        If the shape does not match the layout of its dtype, or float data contains
        non-finite values or is clearly outside ``[-1, 1]``.
    """
    if hasattr(images, 'asnumpy') and callable(images.asnumpy):
        images = images.asnumpy()
    if not isinstance(images, np.ndarray):
        raise TypeError(
            '%s must be a numpy array (uint8, N x H x W x C) or an mx.nd.NDArray (float in '
            '[-1, 1], N x C x H x W); got %s. Convert lists with np.stack.'
            % (name, type(images).__name__))
    if images.dtype == np.uint8:
        return _check_uint8_nhwc(images, name, channels)
    if np.issubdtype(images.dtype, np.floating):
        return _float_nchw_to_uint8_nhwc(images, name, channels)
    raise TypeError(
        '%s has dtype %s; expected uint8 (N, H, W, C) in [0, 255] or float (N, C, H, W) in '
        '[-1, 1]. Convert integer pixel data with x.astype(np.uint8).'
        % (name, images.dtype))


def make_grid(images, nrow=None, padding=2, pad_value=255):
    """Tile a batch of images into one picture.

    Parameters
    ----------
    images : NDArray or numpy.ndarray
        uint8 NHWC, or float NCHW in [-1, 1].
    nrow : int or None
        Images per row; default the square root of the count, rounded up.
    padding : int
        Pixels between images and around the grid.
    pad_value : int
        Grey level of the padding.

    Returns
    -------
    numpy.ndarray
        uint8 (H, W, C) RGB.
    """
    images = to_uint8_images(images)
    num, height, width, channels = images.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(num))))
    ncol = int(math.ceil(num / float(nrow)))
    grid = np.full((padding + ncol * (height + padding), padding + nrow * (width + padding),
                    channels), pad_value, dtype=np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, nrow)
        top, left = padding + r * (height + padding), padding + c * (width + padding)
        grid[top:top + height, left:left + width] = img
    return grid


def save_image(path, image):
    """Write an RGB uint8 (H, W, 3) image; the format follows the extension. Atomic."""
    ext = os.path.splitext(path)[1].lower() or '.png'
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(ext, image)
    if not ok:
        raise ValueError('cannot encode an image as %r (use .png or .jpg): %s' % (ext, path))
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            f.write(encoded.tobytes())
    return path
