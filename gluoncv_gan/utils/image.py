"""Image grids and image files."""
import math
import os

import cv2
import numpy as np

from .fileio import atomic_path

__all__ = ['to_uint8_images', 'make_grid', 'save_image']


def to_uint8_images(images):
    """Images to uint8 NHWC RGB.

    Accepts uint8 NHWC (returned as is) or float NCHW in [-1, 1] as an NDArray or a numpy array
    (the generator's output), which is rounded and clipped.
    """
    if hasattr(images, 'asnumpy'):
        images = images.asnumpy()
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError('expected a batch of images with 4 dimensions, got shape %s'
                         % (images.shape,))
    if images.dtype == np.uint8:
        if images.shape[-1] not in (1, 3):
            raise ValueError('uint8 images must be NHWC with 1 or 3 channels, got shape %s'
                             % (images.shape,))
        return images
    if images.shape[1] not in (1, 3):
        raise ValueError('float images must be NCHW in [-1, 1] with 1 or 3 channels, got shape %s'
                         % (images.shape,))
    scaled = np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.moveaxis(scaled, 1, -1))


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
