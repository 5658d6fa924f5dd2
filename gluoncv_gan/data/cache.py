"""Decode a folder of images once into a memory-mapped uint8 array at the training resolution.

A cache is ``{prefix}-{size}-{key}.npy`` (uint8 (N, size, size, 3) RGB) and, written last, a
``.json`` naming the files kept and skipped (with reasons) and the array's shape; the key hashes
the resolution and the file list. See docs/data.md#the-image-cache.
"""
import concurrent.futures
import hashlib
import io
import json
import logging
import os
import threading
import time

import cv2
import numpy as np
from PIL import Image

from ..utils.fileio import atomic_path

__all__ = ['decode_image', 'read_image', 'truncation', 'declared_size', 'shown_path', 'cache_key',
           'ImageCache', 'MAX_PIXELS']

logger = logging.getLogger(__name__)
CACHE_VERSION = 3  # 2: truncated JPEG and PNG files are skipped; 3: oversized and unlistable too
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_END = b'\x00\x00\x00\x00IEND\xaeB`\x82'
JPEG_START, JPEG_END = b'\xff\xd8', b'\xff\xd9'
# the JPEG markers that start a frame and give its size (SOF0-3, 5-7, 9-11, 13-15)
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}

# Images whose header declares more pixels than this are skipped before they are decoded:
# decoding takes 3 bytes per pixel (150 MB at the limit), and a file can declare 32000x32000
# pixels (3 GB decoded) in 130 KB. 50 megapixels is above what phones and most cameras write
# (8000x6000 is within it). docs/data.md states the limit.
MAX_PIXELS = 50000000
# Files larger than this are not read: an image within MAX_PIXELS is smaller even uncompressed
# (4 bytes per pixel) plus a motion photo's video.
MAX_FILE_BYTES = 4 * MAX_PIXELS + 64 * 2 ** 20
# images above this many pixels are decoded one at a time, whatever the number of threads
_LARGE_PIXELS = 4000000
_large_decodes = threading.Semaphore(1)


def _jpeg_layout(data):
    """(width, height, end) of a JPEG from its markers, without decoding it.

    ``end`` is the offset just after the end-of-image marker (FF D9) that closes the image's
    last scan, or None when the data ends before it. Anything after ``end`` is not part of the
    image (phones append a video to motion photos). ``width`` and ``height`` are None when no
    frame header was found.
    """
    width = height = None
    i, n = 2, len(data)
    while i + 2 <= n:
        if data[i] != 0xFF:
            return width, height, None  # not at a marker: damaged
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker == 0xD9:
            return width, height, i + 2
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if i + 4 > n:
            return width, height, None
        length = int.from_bytes(data[i + 2:i + 4], 'big')
        if length < 2:
            return width, height, None
        if marker in _JPEG_FRAMES and i + 9 <= n:
            height = int.from_bytes(data[i + 5:i + 7], 'big')
            width = int.from_bytes(data[i + 7:i + 9], 'big')
        i += 2 + length
        if marker == 0xDA:  # start of scan: compressed data up to the next real marker
            while True:
                j = data.find(b'\xff', i)
                if j < 0 or j + 1 >= n:
                    return width, height, None
                following = data[j + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                    i = j + 1 if following == 0xFF else j + 2  # stuffing, restart, fill
                    continue
                i = j
                break
    return width, height, None


def truncation(data):
    """Why the bytes of a JPEG or PNG file are cut short, or None when they end properly.

    OpenCV decodes a truncated JPEG without an error (libjpeg only warns and fills the rest
    with grey), so the end of the image is checked: a JPEG's markers must lead to its
    end-of-image marker (bytes after it are allowed: they are not part of the image), a PNG
    must end with its IEND chunk (zero padding after it, which some writers add, is allowed).
    Other formats give None.
    """
    if data.startswith(JPEG_START) and _jpeg_layout(data)[2] is None:
        return 'truncated JPEG: no end-of-image marker'
    if data.startswith(PNG_SIGNATURE) and PNG_END not in data[-64:]:
        return 'truncated PNG: no IEND chunk'
    return None


def declared_size(data):
    """(width, height) that an image file's header declares, read without decoding it.

    JPEG and PNG headers are read here; other formats through PIL, which reads only the header
    when it opens a file. None when the header gives no size.
    """
    if data.startswith(JPEG_START):
        width, height, _ = _jpeg_layout(data)
        return (width, height) if width and height else None
    if data.startswith(PNG_SIGNATURE):
        if data[12:16] != b'IHDR' or len(data) < 24:
            return None
        return int.from_bytes(data[16:20], 'big'), int.from_bytes(data[20:24], 'big')
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except Image.DecompressionBombError:
        return MAX_PIXELS + 1, 1  # PIL refuses even to open it: far above the limit
    except Exception:  # noqa: BLE001 - whatever PIL fails on, the header gives no size
        return None


def shown_path(path):
    """A path as text that any log or terminal can show: bytes that are not UTF-8 as \\xNN."""
    return os.fsencode(path).decode('utf-8', 'backslashreplace')


def read_image(path, size, interpolation=cv2.INTER_AREA):
    """(RGB uint8 image (size, size, 3), None), or (None, why it cannot be used)."""
    try:
        with open(path, 'rb') as f:
            length = os.fstat(f.fileno()).st_size
            if length > MAX_FILE_BYTES:
                return None, ('file of %.0f MB, larger than any image within the %d-pixel limit'
                              % (length / 1e6, MAX_PIXELS))
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        return None, 'cannot be read (%s)' % (err.strerror or err)
    if not data:
        return None, 'empty file'
    declared = declared_size(data)
    if declared is None:
        return None, 'not a decodable image (its header gives no image size)'
    if declared[0] * declared[1] > MAX_PIXELS:
        return None, ('declares %dx%d pixels, more than the limit of %d (skipped before '
                      'decoding)' % (declared[0], declared[1], MAX_PIXELS))
    problem = truncation(data)
    if problem:
        return None, problem
    if data.startswith(JPEG_START):
        data = data[:_jpeg_layout(data)[2]]  # without what follows the image
    try:
        if declared[0] * declared[1] > _LARGE_PIXELS:
            with _large_decodes:
                img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        else:
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as err:
        return None, 'not a decodable image (%s)' % _last_line(err)
    if img is None or img.size == 0:
        return None, 'not a decodable image'
    return _to_square_rgb(img, size, interpolation), None


def _last_line(err):
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def decode_image(path, size, interpolation=cv2.INTER_AREA):
    """Read an image file as RGB uint8 (size, size, 3), or None when it cannot be decoded.

    Greyscale images are tiled to three channels; a non-square image is centre-cropped to a
    square before resizing. INTER_AREA is the default because it averages the pixels it
    shrinks, where the tutorial's bilinear resize of 250 to 64 pixels aliases.
    """
    return read_image(path, size, interpolation)[0]


def _to_square_rgb(img, size, interpolation):
    """A BGR image centre-cropped to a square, resized to ``size``, as RGB."""
    h, w = img.shape[:2]
    if h != w:
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        img = img[top:top + side, left:left + side]
    if img.shape[0] != size:
        interp = interpolation if img.shape[0] > size else cv2.INTER_CUBIC
        img = cv2.resize(img, (size, size), interpolation=interp)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def cache_key(root, files, size, unlisted=None):
    """Hex key of a resolution and a file list (relative path, size and mtime of each file),
    and of the files left out when listing (``unlisted``: why, by path).

    Paths are taken as the bytes the filesystem gave, whatever their encoding.
    """
    digest = hashlib.sha1(('v%d size=%d\n' % (CACHE_VERSION, size)).encode())
    for path in files:
        st = os.stat(path)
        rel = os.fsencode(os.path.relpath(path, root))
        digest.update(rel + b'\t%d\t%d\n' % (st.st_size, st.st_mtime_ns))
    for path, why in sorted((unlisted or {}).items()):
        rel = os.fsencode(os.path.relpath(path, root))
        digest.update(rel + b'\tunlisted\t' + why.encode('utf-8', 'backslashreplace') + b'\n')
    return digest.hexdigest()[:16]


def _decode_all(files, size, interpolation, num_workers, desc):
    """Decode ``files`` in threads (OpenCV releases the GIL): a list of (image, None) or
    (None, why it was skipped)."""
    from tqdm import tqdm
    with concurrent.futures.ThreadPoolExecutor(max_workers=num_workers) as pool:
        jobs = pool.map(lambda f: read_image(f, size, interpolation), files, chunksize=64)
        return list(tqdm(jobs, total=len(files), desc=desc, unit='img', leave=False,
                         mininterval=1.0, disable=len(files) < 1000))


class ImageCache:
    """The decoded images of a file list, from a cache file or decoded now.

    Parameters
    ----------
    root : str
        Folder the file paths are relative to (part of the key).
    files : list of str
        Image paths, in the order the dataset indexes them.
    size : int
        Height and width of the cached images.
    cache_dir : str or None
        Folder for the cache files; None decodes into memory and writes nothing.
    prefix : str
        First part of the cache file names.
    interpolation : int
        OpenCV interpolation for down-sizing.
    num_workers : int or None
        Decoding threads (default: the number of CPUs).
    unlisted : dict or None
        Files left out before decoding (broken links...): why, by path; listed among the
        skipped ones.

    Attributes
    ----------
    images : numpy.ndarray
        uint8 (N, size, size, 3) RGB; memory-mapped when read from a cache file.
    files : list of str
        The files behind ``images``, in order.
    skipped : list of str
        Files that could not be decoded (left out of ``images``).
    skipped_reasons : dict
        Why each of them was skipped, by path (empty, truncated, not an image...).
    path : str or None
        The cache's .npy file, when there is one.
    """

    def __init__(self, root, files, size, cache_dir=None, prefix='images',
                 interpolation=cv2.INTER_AREA, num_workers=None, unlisted=None):
        self.root, self.size = root, size
        self.unlisted = dict(unlisted or {})
        self.interpolation = interpolation
        self.num_workers = num_workers or os.cpu_count() or 1
        self.path = None
        if cache_dir is None:
            self._decode(files)
            return
        key = cache_key(root, files, size, self.unlisted)
        base = os.path.join(os.path.expanduser(cache_dir), '%s-%d-%s' % (prefix, size, key))
        self.path = base + '.npy'
        if not self._load(base, root):
            self._build(base, files)

    def _decode(self, files):
        decoded = _decode_all(files, self.size, self.interpolation, self.num_workers,
                              'decoding %d images' % len(files))
        self.files = [f for f, (img, _) in zip(files, decoded) if img is not None]
        self.skipped_reasons = dict(self.unlisted)
        self.skipped_reasons.update((f, why) for f, (img, why) in zip(files, decoded)
                                    if img is None)
        self.skipped = list(self.skipped_reasons)
        shape = (len(self.files), self.size, self.size, 3)
        self.images = np.stack([img for img, _ in decoded if img is not None]) if self.files \
            else np.zeros(shape, np.uint8)

    def _load(self, base, root):
        """Open an existing complete cache; False when there is none (or it is unusable)."""
        try:
            with open(base + '.json') as f:
                meta = json.load(f)
            images = np.load(base + '.npy', mmap_mode='r')
        except (OSError, ValueError):
            return False
        if meta.get('version') != CACHE_VERSION or list(images.shape) != meta.get('shape') \
                or images.dtype != np.uint8:
            logger.warning('Ignoring inconsistent image cache %s; rebuilding it.', base + '.npy')
            return False
        self.images = images
        self.files = [os.path.join(root, rel) for rel in meta['files']]
        self.skipped = [os.path.join(root, rel) for rel in meta['skipped']]
        self.skipped_reasons = {os.path.join(root, rel): why
                                for rel, why in meta.get('skipped_reasons', {}).items()}
        return True

    @staticmethod
    def _remove_stale(base):
        """Delete caches of the same prefix and size made for an older file list."""
        folder, name = os.path.split(base)
        stem = name.rsplit('-', 1)[0] + '-'
        for other in os.listdir(folder):
            if other.startswith(stem) and not other.startswith(name) \
                    and other.endswith(('.npy', '.json')):
                os.remove(os.path.join(folder, other))

    def _build(self, base, files):
        start = time.time()
        logger.info('Building the %dx%d image cache of %d files in %s (once per file list '
                    'and resolution)...', self.size, self.size, len(files), os.path.dirname(base))
        self._decode(files)
        meta = {'version': CACHE_VERSION, 'shape': list(self.images.shape),
                'files': [os.path.relpath(p, self.root) for p in self.files],
                'skipped': [os.path.relpath(p, self.root) for p in self.skipped],
                'skipped_reasons': {os.path.relpath(p, self.root): why
                                    for p, why in self.skipped_reasons.items()}}
        try:
            with atomic_path(base + '.npy') as tmp:
                with open(tmp, 'wb') as f:
                    np.save(f, self.images)
            with atomic_path(base + '.json') as tmp:
                with open(tmp, 'w') as f:
                    json.dump(meta, f)
        except OSError as err:
            logger.warning('Could not write the image cache in %s (%s); keeping the decoded '
                           'images in memory. Pass a writable cache_dir to keep them across '
                           'runs.', os.path.dirname(base), err)
            self.path = None
            return
        self._remove_stale(base)
        self.images = np.load(base + '.npy', mmap_mode='r')
        logger.info('Image cache built in %.1f s: %s (%.1f MB)', time.time() - start,
                    base + '.npy', os.path.getsize(base + '.npy') / 1e6)
