"""Face datasets for GAN training: LFW, its bundled sample, and any folder of face images."""
import errno
import logging
import os
import stat

import cv2
import mxnet as mx
import numpy as np
from gluoncv.data.base import VisionDataset

from ..utils.paths import default_dataset_root
from .cache import ImageCache, decode_image, shown_path

__all__ = ['FaceFolder', 'LFW', 'LFWSample', 'to_gan_array', 'SAMPLE_ROOT']

logger = logging.getLogger(__name__)
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.ppm', '.webp')
SAMPLE_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lfw_sample')
LFW_FOLDER = 'lfw-deepfunneled'


def to_gan_array(images):
    """uint8 RGB images, (H, W, 3) or (N, H, W, 3), to float32 CHW in [-1, 1] (numpy)."""
    images = np.asarray(images)
    chw = np.moveaxis(images, -1, -3).astype(np.float32)
    return chw / 127.5 - 1.0


def _unusable(path):
    """Why a listed image file cannot be used (a broken or looping link...), or None."""
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        if os.path.islink(path):
            if err.errno == errno.ELOOP:
                return 'symbolic link loop'
            return 'broken symbolic link (to %s)' % shown_path(os.readlink(path))
        return 'cannot be read (%s)' % (err.strerror or err)
    if not stat.S_ISREG(mode):  # a FIFO would block the reader forever
        return 'not a regular file'
    return None


class FaceFolder(VisionDataset):
    """Every image below a folder (recursively), ready for GAN training.

    Items are ``(image, label)``: ``image`` a float32 NDArray (3, size, size) in [-1, 1] (RGB;
    greyscale tiled to 3 channels; non-square images centre-cropped), ``label`` the index of
    the image's parent folder among all parent folders (the identity, for LFW).

    Parameters
    ----------
    root : str
        Folder to search for images.
    size : int, default 64
        Height and width of the images.
    use_cache : bool, default True
        Decode every image once into a memory-mapped uint8 cache (see
        :mod:`gluoncv_gan.data.cache`) and serve items from it. False decodes on each access.
    cache_dir : str, None or False
        Folder for the cache; default (None) ``{root}/cache``; False keeps the decoded images
        in memory only.
    transform : callable or None
        Applied to ``(image, label)`` after the conversion to [-1, 1].
    interpolation : int, default cv2.INTER_AREA
        OpenCV interpolation used to shrink images.
    num_workers : int or None
        Threads that decode images while building the cache.

    Attributes
    ----------
    images : numpy.ndarray or None
        The cached images, uint8 (N, size, size, 3) RGB (None without a cache): the fast path
        for batch loaders.
    skipped : list of str
        Files left out because they could not be decoded (also truncated JPEG and PNG files).
    skipped_reasons : dict
        Why each was left out, by path.
    """

    def __init__(self, root, size=64, use_cache=True, cache_dir=None, transform=None,
                 interpolation=cv2.INTER_AREA, num_workers=None):
        self._root = os.path.abspath(os.path.expanduser(root))
        self._size, self._transform, self._interpolation = size, transform, interpolation
        self._unlisted = {}  # files that cannot be opened (broken links...): why, by path
        files = self._list_files()  # before the base class, whose error has no fix to offer
        super().__init__(self._root)
        self.images = None
        if use_cache:
            if cache_dir is None:
                cache_dir = os.path.join(self._root, 'cache')
            cache = ImageCache(self._root, files, size, cache_dir=cache_dir or None,
                               prefix=self._cache_prefix(), interpolation=interpolation,
                               num_workers=num_workers, unlisted=self._unlisted)
            self.images, self.cache_path = cache.images, cache.path
            files, self.skipped = cache.files, cache.skipped
            self.skipped_reasons = cache.skipped_reasons
            self._warn_skipped()
        else:
            self.cache_path = None
            self.skipped, self.skipped_reasons = list(self._unlisted), dict(self._unlisted)
            self._warn_skipped()
        self.files = files
        folders = sorted({os.path.dirname(f) for f in files})
        index = {folder: i for i, folder in enumerate(folders)}
        self._classes = [os.path.basename(folder) for folder in folders]
        self.labels = np.array([index[os.path.dirname(f)] for f in files], dtype=np.int32)

    def _cache_prefix(self):
        return 'faces'

    def _missing_message(self, problem):
        return ('%s. Point root at a folder that holds image files (searched recursively for %s).'
                % (problem, ', '.join(IMAGE_EXTENSIONS)))

    def _list_files(self):
        if not os.path.isdir(self._root):
            raise FileNotFoundError(self._missing_message('Image folder %s does not exist'
                                                          % self._root))
        files = []
        for folder, subfolders, names in os.walk(self._root):
            subfolders[:] = sorted(d for d in subfolders if d != 'cache' and not d.startswith('.'))
            for name in sorted(names):
                if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith('.'):
                    path = os.path.join(folder, name)
                    problem = _unusable(path)
                    if problem:
                        self._unlisted[path] = problem
                    else:
                        files.append(path)
        if not files and not self._unlisted:
            raise FileNotFoundError(self._missing_message('No images found in %s' % self._root))
        return files

    def _warn_skipped(self):
        for path in self.skipped:
            why = self.skipped_reasons.get(path)
            logger.warning('Skipped unreadable image %s%s', shown_path(path),
                           ' (%s)' % why if why else '')
        if self.skipped:
            logger.warning('%d of %d images could not be decoded and were skipped (listed above).',
                           len(self.skipped), len(self.skipped) + len(self.images))

    @property
    def classes(self):
        """Names of the image folders (person names for LFW), indexed by the labels."""
        return self._classes

    @property
    def size(self):
        """Height and width of the images."""
        return self._size

    def __len__(self):
        return len(self.files)

    def _read(self, idx):
        """uint8 (size, size, 3) of item ``idx``, decoding it when there is no cache."""
        if self.images is not None:
            return self.images[idx]
        for offset in range(len(self.files)):
            path = self.files[(idx + offset) % len(self.files)]
            img = decode_image(path, self._size, self._interpolation)
            if img is not None:
                return img
            if path not in self.skipped:
                self.skipped.append(path)
                logger.warning('Skipped unreadable image %s (serving the next image instead; '
                               '%d skipped so far)', shown_path(path), len(self.skipped))
        raise RuntimeError('None of the %d images in %s can be decoded' % (len(self.files),
                                                                          self._root))

    def __getitem__(self, idx):
        image = mx.nd.array(to_gan_array(self._read(idx)), dtype='float32')
        label = int(self.labels[idx])
        if self._transform is not None:
            return self._transform(image, label)
        return image, label


class LFW(FaceFolder):
    """Labeled Faces in the Wild (deep-funneled) for GAN training.

    Reads the official layout ``{root}/lfw-deepfunneled/<Name>/<Name>_NNNN.jpg`` (``root`` may
    also be the ``lfw-deepfunneled`` folder itself). Items are ``(image, label)`` as in
    :class:`FaceFolder`, ``label`` indexing :attr:`classes` (the person names).

    Parameters
    ----------
    root : str, default '$MXNET_HOME/datasets/lfw'
        Where ``python -m gluoncv_gan.data.prepare_lfw`` put the data.
    size : int, default 64
        Height and width of the images.
    use_cache : bool, default True
        Serve images from a memory-mapped uint8 cache built on first use.
    cache_dir : str or None
        Folder for the cache; default ``{root}/cache``.
    transform : callable or None
        Applied to ``(image, label)``.
    """

    def __init__(self, root=None, size=64, use_cache=True, cache_dir=None, transform=None,
                 **kwargs):
        root = os.path.expanduser(root or default_dataset_root('lfw'))
        image_root = os.path.join(root, LFW_FOLDER)
        if not os.path.isdir(image_root):
            image_root = root
        if cache_dir is None:
            cache_dir = os.path.join(root, 'cache')
        super().__init__(image_root, size=size, use_cache=use_cache, cache_dir=cache_dir,
                                  transform=transform, **kwargs)

    def _cache_prefix(self):
        return 'lfw'

    def _missing_message(self, problem):
        return ('%s. Prepare LFW with `python -m gluoncv_gan.data.prepare_lfw` (downloads and '
                'verifies it into $MXNET_HOME/datasets/lfw; add --archive PATH for a local copy of '
                'lfw-deepfunneled.tgz), or pass the folder as root=...' % problem)

    def _list_files(self):
        files = super()._list_files()
        # The official layout is one folder per person; ignore stray images at the top level.
        return [f for f in files if os.path.dirname(os.path.dirname(f)) == self._root]


class LFWSample(LFW):
    """A few hundred LFW faces shipped inside the package: no download needed.

    Unmodified files from LFW deep-funneled (see the README for provenance and citation). The
    cache goes to ``$MXNET_HOME/datasets/lfw_sample/cache``, never into the installed package.

    Parameters
    ----------
    size : int, default 64
        Height and width of the images.
    use_cache : bool, default True
        Keep the decoded images in a cache file.
    cache_dir : str or None
        Folder for the cache; default ``$MXNET_HOME/datasets/lfw_sample/cache``.
    transform : callable or None
        Applied to ``(image, label)``.
    """

    def __init__(self, size=64, use_cache=True, cache_dir=None, transform=None, **kwargs):
        if cache_dir is None:
            cache_dir = os.path.join(default_dataset_root('lfw_sample'), 'cache')
        super().__init__(SAMPLE_ROOT, size=size, use_cache=use_cache,
                                        cache_dir=cache_dir, transform=transform, **kwargs)

    def _cache_prefix(self):
        return 'lfw_sample'
