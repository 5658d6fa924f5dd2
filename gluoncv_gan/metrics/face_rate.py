"""Face-detection rate: the fraction of images in which a face detector finds a face.

The detector is OpenCV's bundled frontal-face Haar cascade, so no network or download is needed:
a coarse check that samples read as faces (noise scores near 0; mode collapse is
:mod:`.diversity`'s job). The settings are fixed so that numbers compare between runs: images
upscaled to 128x128 (cubic), grey, histogram-equalised; ``scaleFactor=1.1``,
``minNeighbors=4``, ``minSize`` 30 % of the side. Measured rates: docs/evaluation.md#the-metrics.
"""
import os

import cv2
import numpy as np

from .common import check_images

__all__ = ['cascade_path', 'detect_faces', 'face_detection_rate', 'FaceDetectionRate']

CASCADE_FILE = 'haarcascade_frontalface_default.xml'
DETECT_SIZE = 128
SCALE_FACTOR = 1.1
MIN_NEIGHBORS = 4
MIN_SIZE_FRACTION = 0.3

_CASCADES = {}


def cascade_path():
    """Path of OpenCV's bundled frontal-face cascade (may not exist)."""
    return os.path.join(cv2.data.haarcascades, CASCADE_FILE)


def _load_cascade(path=None):
    """Load a Haar cascade once per process and return the cached classifier."""
    path = path or cascade_path()
    if path not in _CASCADES:
        if not os.path.isfile(path):
            raise FileNotFoundError(
                'Haar cascade not found at %s. Install the opencv-python wheel (it bundles '
                'cv2/data/%s) or pass cascade=<path to the XML file>.' % (path, CASCADE_FILE))
        classifier = cv2.CascadeClassifier(path)
        if classifier.empty():
            raise IOError('OpenCV could not parse the cascade file %s; re-install opencv-python '
                          'or pass a valid cascade XML.' % (path,))
        _CASCADES[path] = classifier
    return _CASCADES[path]


def _prepare(image, size):
    """Upscale one RGB uint8 image to ``size`` (cubic), make it gray and equalise it."""
    resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC)
    return cv2.equalizeHist(cv2.cvtColor(resized, cv2.COLOR_RGB2GRAY))


def detect_faces(images, size=DETECT_SIZE, scale_factor=SCALE_FACTOR,
                 min_neighbors=MIN_NEIGHBORS, min_size_fraction=MIN_SIZE_FRACTION,
                 cascade=None):
    """Tell for each image whether the cascade finds at least one face.

    Parameters
    ----------
    images : numpy.ndarray or mxnet.nd.NDArray
        uint8 RGB ``(N, H, W, 3)`` or float ``(N, 3, H, W)`` in ``[-1, 1]``.
    size : int, optional
        Side of the square image the detector sees.
    scale_factor, min_neighbors : float, int, optional
        ``cv2.CascadeClassifier.detectMultiScale`` settings.
    min_size_fraction : float, optional
        Smallest face, as a fraction of ``size``.
    cascade : str, optional
        Path of another cascade XML; defaults to the bundled frontal-face one.

    Returns
    -------
    numpy.ndarray
        bool array of shape ``(N,)``.
    """
    images = check_images(images)
    classifier = _load_cascade(cascade)
    min_side = int(round(min_size_fraction * size))
    # detectMultiScale takes one image at a time, so this loop cannot be vectorised.
    found = [len(classifier.detectMultiScale(_prepare(image, size), scaleFactor=scale_factor,
                                             minNeighbors=min_neighbors,
                                             minSize=(min_side, min_side))) > 0
             for image in images]
    return np.array(found, dtype=bool)


def face_detection_rate(images, **kwargs):
    """Fraction of images in which a frontal face is detected.

    Parameters
    ----------
    images : numpy.ndarray or mxnet.nd.NDArray
        uint8 RGB ``(N, H, W, 3)`` or float ``(N, 3, H, W)`` in ``[-1, 1]``.
    **kwargs
        Detector settings of :func:`detect_faces`.

    Returns
    -------
    float
        Rate in ``[0, 1]``.
    """
    return float(detect_faces(images, **kwargs).mean())


class FaceDetectionRate:
    """Accumulating face-detection rate with an ``mx.metric.EvalMetric``-like interface.

    Only the counts are kept, so batches can be added without storing images.

    Parameters
    ----------
    name : str, optional
        Name returned by :meth:`get`.
    **kwargs
        Detector settings of :func:`detect_faces`.
    """

    def __init__(self, name='face_rate', **kwargs):
        self.name = name
        self.kwargs = kwargs
        self.reset()

    def reset(self):
        """Forget all counts."""
        self.num_faces = 0
        self.num_inst = 0

    def update(self, images):
        """Run the detector on a batch and add it to the counts.

        Parameters
        ----------
        images : numpy.ndarray or mxnet.nd.NDArray
            A batch in any layout accepted by :func:`detect_faces`.
        """
        found = detect_faces(images, **self.kwargs)
        self.num_faces += int(found.sum())
        self.num_inst += len(found)

    def get(self):
        """Return ``(name, rate)``; the rate is NaN before the first update."""
        if self.num_inst == 0:
            return self.name, float('nan')
        return self.name, self.num_faces / self.num_inst
