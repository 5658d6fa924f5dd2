"""Sharpness: how much fine detail generated images carry compared with real ones.

The energy of an image's finest detail is the variance of its Laplacian (the 3x3 second
derivative of the grey image, values in [0, 1]): blur lowers it, noise and ringing raise it.
:func:`sharpness_ratio` divides the mean energy of generated images by that of real images of
the same size: 1 is as sharp as real, below 1 blurrier, above 1 noisier than real.
"""
import cv2
import numpy as np

from .common import check_images

__all__ = ['laplacian_energy', 'sharpness_ratio']


def laplacian_energy(images):
    """Mean over ``images`` (uint8 NHWC RGB) of the variance of each grey image's Laplacian."""
    images = check_images(images)
    energies = [cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64) / 255,
                              cv2.CV_64F, ksize=1).var()
                for img in images]
    return float(np.mean(energies))


def sharpness_ratio(fake, real):
    """Laplacian energy of ``fake`` over that of ``real`` (same size); a dict with both."""
    fake, real = check_images(fake, 'fake'), check_images(real, 'real')
    if fake.shape[1:] != real.shape[1:]:
        raise ValueError('sharpness compares images of one size, got %s and %s'
                         % (fake.shape[1:3], real.shape[1:3]))
    fake_energy, real_energy = laplacian_energy(fake), laplacian_energy(real)
    return {'sharpness': fake_energy / real_energy, 'laplacian_energy': fake_energy,
            'laplacian_energy_real': real_energy}
