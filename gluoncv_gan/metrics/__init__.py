"""GAN quality metrics.

All metrics take uint8 RGB images ``(N, H, W, 3)``, or generator output as an
``mx.nd.NDArray`` of floats in ``[-1, 1]`` with layout ``(N, 3, H, W)``.

* :func:`sliced_wasserstein_distance` / :class:`SlicedWassersteinDistance`:
  distribution distance on Laplacian-pyramid patches (Karras et al. 2018).
* :func:`face_detection_rate` / :class:`FaceDetectionRate`: fraction of
  images in which OpenCV's Haar cascade finds a face.
* :func:`diversity` / :class:`Diversity`: mean distance between random image
  pairs, a mode-collapse alarm.
* :func:`nearest_neighbour_distances`, :func:`memorization_score`: are
  samples copies of training images?
* :func:`sharpness_ratio`: fine detail (Laplacian energy) of generated over real images.
* :func:`inception_scores` (FID, KID, precision/recall) of Inception features from
  :mod:`gluoncv_gan.metrics.inception`, the reference network of the ``[fid]`` extra.
"""
from .common import to_uint8_nhwc
from .diversity import Diversity, diversity
from .face_rate import FaceDetectionRate, face_detection_rate
from .fid import (fid_from_features, frechet_distance, inception_scores,
                  kernel_inception_distance, precision_recall)
from .memorization import memorization_score, nearest_neighbour_distances
from .sharpness import laplacian_energy, sharpness_ratio
from .swd import SlicedWassersteinDistance, laplacian_pyramid, sliced_wasserstein_distance

__all__ = ['to_uint8_nhwc',
           'sliced_wasserstein_distance', 'SlicedWassersteinDistance', 'laplacian_pyramid',
           'face_detection_rate', 'FaceDetectionRate',
           'diversity', 'Diversity',
           'nearest_neighbour_distances', 'memorization_score',
           'laplacian_energy', 'sharpness_ratio',
           'frechet_distance', 'fid_from_features', 'kernel_inception_distance',
           'precision_recall', 'inception_scores']
