"""Input handling shared by the GAN metrics.

Every metric works on a batch of RGB images stored as ``uint8`` numpy arrays
of shape ``(N, H, W, 3)``.  Generator output (an ``mx.nd.NDArray`` of floats in
``[-1, 1]`` with layout ``NCHW``) is accepted too and converted once by
:func:`to_uint8_nhwc`, which is
:func:`gluoncv_gan.utils.image.to_uint8_images` restricted to three channels.
"""
import numpy as np

from ..utils.image import to_uint8_images

__all__ = ['to_uint8_nhwc', 'check_images', 'to_unit_float']


def to_uint8_nhwc(x, name='images'):
    """Convert a batch of RGB images to uint8 ``(N, H, W, 3)``.

    Parameters
    ----------
    x : numpy.ndarray or mxnet.nd.NDArray
        uint8 ``(N, H, W, 3)`` or float ``(N, 3, H, W)`` in ``[-1, 1]``; see
        :func:`gluoncv_gan.utils.image.to_uint8_images` for the conversion and the errors.
    name : str, optional
        Name of the argument, used in error messages.

    Returns
    -------
    numpy.ndarray
        uint8 array of shape ``(N, H, W, 3)``.
    """
    return to_uint8_images(x, name, channels=(3,))


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
        raise ValueError('%s holds %s image(s); this metric needs at least %s. '
                         'Pass a larger batch.' % (name, len(images), min_count))
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
