"""Measure how good a generator is: SWD, face-detection rate, diversity, memorisation.

Examples::

    python -m gluoncv_gan.evaluate dcgan_lfw --pretrained --real ~/.mxnet/datasets/lfw
    python -m gluoncv_gan.evaluate dcgan_lfw --params runs/dcgan_lfw/model.params --real lfw_sample
    python -m gluoncv_gan.evaluate --fake samples.npy --real lfw_sample --json metrics.json

Sources of images (``--fake`` and ``--real``): ``lfw_sample`` (the bundled faces), an LFW root
(holding ``lfw-deepfunneled/``), any folder of images (searched recursively), or an ``.npy`` of
uint8 NHWC RGB images.

How the real images are used: ``--num-samples`` of them (drawn with ``--seed``) are the
reference set of SWD, face rate and diversity; the remaining ones are the "training" reference
of the memorisation check, against which the reference set plays the held-out part (a generator
that copies training images lands much nearer to them than distinct real images do).
"""
import argparse
import json
import logging
import os
import sys
import time

import cv2
import mxnet as mx
import numpy as np

from .metrics import (diversity, face_detection_rate, memorization_score,
                      sliced_wasserstein_distance)
from .model_zoo import get_model, get_model_list
from .utils.cli import add_debug_flag, check_output_path, command
from .utils.download import DownloadError
from .utils.fileio import atomic_path
from .utils.image import make_grid, save_image, to_uint8_images
from .utils.cli import prog

__all__ = ['load_generator', 'load_images', 'generate_images', 'evaluate_images', 'main']

logger = logging.getLogger(__name__)
MAX_MEMORIZATION_REFERENCE = 10000


def _saved_config(folder):
    """The training config kept beside weights: a checkpoint's state.json or a run's config.yaml.

    Returns an empty dict when ``folder`` has neither.
    """
    from .estimator.checkpoint import STATE_FILE, read_state
    if os.path.isfile(os.path.join(folder, STATE_FILE)):
        return read_state(folder).get('config') or {}
    path = os.path.join(folder, 'config.yaml')
    if os.path.isfile(path):
        import yaml
        with open(path) as f:
            return yaml.safe_load(f) or {}
    return {}


def load_generator(model, pretrained=False, params=None, ema=False, ctx=None):
    """A model-zoo DCGAN pair with weights from ``params`` or the model store.

    ``params`` may be a pair's ``.params`` file (``model.params``), a generator-only file
    (``generator_ema.params``), a checkpoint folder or a run folder; ``ema`` prefers the
    moving-average generator of a checkpoint or run folder.  The network is built with the
    ``nz``, ``ngf`` and ``ndf`` of the training config found beside the weights (a checkpoint's
    ``state.json`` or a run's ``config.yaml``), else with the model's defaults.

    Raises
    ------
    FileNotFoundError
        If ``params`` does not exist or a folder holds no weights.
    ValueError
        If the weights belong to another model or do not fit the network.
    """
    ctx = ctx or mx.cpu()
    if params is None:
        return get_model(model, pretrained=pretrained, ctx=ctx)
    path = os.path.abspath(os.path.expanduser(params))
    if os.path.isdir(path):
        from .estimator.checkpoint import find_checkpoint
        folder = path if os.path.isfile(os.path.join(path, 'model.params')) \
            else find_checkpoint(path)
        name = 'generator_ema.params' if ema else 'model.params'
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise FileNotFoundError('%s has no %s%s' % (folder, name, ' (the run kept no moving '
                                                        'average: drop --ema)' if ema else ''))
    elif not os.path.isfile(path):
        raise FileNotFoundError('weights %s do not exist: pass a .params file, a checkpoint '
                                'folder or a run folder' % path)
    config = _saved_config(os.path.dirname(path))
    if str(config.get('model', model)).lower() != model.lower():
        raise ValueError('%s holds weights of %s, not %s: pass that model name'
                         % (path, config['model'], model))
    arch = {k: config[k] for k in ('nz', 'ngf', 'ndf') if k in config}
    net = get_model(model, pretrained=pretrained, ctx=ctx, **arch)
    try:
        loaded = mx.nd.load(path)
        # exported weights may be stored in float16 (gluoncv_gan.export): cast them back
        if any(k.startswith('generator.') for k in loaded):
            net.load_parameters(path, ctx=ctx, cast_dtype=True)
        else:
            net.generator.load_parameters(path, ctx=ctx, cast_dtype=True)
            # a moving average of the generator: BatchNorm statistics to match its weights
            from .estimator.ema import recalibrate_batchnorm
            recalibrate_batchnorm(net.generator, net.nz, ctx=ctx)
    except (AssertionError, mx.base.MXNetError) as err:
        lines = str(err).strip().splitlines() or [type(err).__name__]
        raise ValueError('cannot load %s into %s (%s): %s. Weights of other widths load when '
                         'the run\'s config.yaml or the checkpoint\'s state.json is beside them.'
                         % (path, model, ', '.join('%s=%s' % kv for kv in sorted(arch.items()))
                            or 'default widths', lines[-1]))
    return net


def generate_images(net, num, seed=0, ctx=None, batch_size=250):
    """``num`` generated images as uint8 NHWC (generator in inference mode, seeded latents)."""
    return to_uint8_images(net.generate(num, ctx=ctx, seed=seed, batch_size=batch_size))


def _resize_all(images, size):
    if images.shape[1] == size and images.shape[2] == size:
        return images
    return np.stack([cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
                     for img in images])


def load_images(source, size):
    """All images of ``source`` as uint8 NHWC RGB at ``size`` x ``size`` (see module doc).

    ``size`` None keeps the size of an ``.npy``.
    """
    from .data import LFW, FaceFolder, LFWSample
    if source == 'lfw_sample':
        return np.asarray(LFWSample(size=size).images)
    source = os.path.expanduser(source)
    if source.endswith('.npy'):
        if not os.path.isfile(source):
            raise FileNotFoundError('image file %s does not exist' % source)
        try:
            images = np.load(source, mmap_mode='r')
        except (ValueError, OSError, EOFError) as err:
            raise ValueError('%s is not a readable .npy array (%s); pass a uint8 array of shape '
                             '(N, H, H, 3), RGB, e.g. from python -m gluoncv_gan.sample --out '
                             'fake.npy' % (source, err)) from None
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 \
                or images.shape[-1] != 3 \
                or images.shape[1] != images.shape[2]:
            raise ValueError('%s holds %s %s; expected square uint8 images of shape '
                             '(N, H, H, 3), RGB' % (source, images.dtype, images.shape))
        return _resize_all(np.asarray(images), size or images.shape[1])
    if os.path.isdir(os.path.join(source, 'lfw-deepfunneled')):
        return np.asarray(LFW(root=source, size=size).images)
    return np.asarray(FaceFolder(source, size=size, cache_dir=False).images)


def split_real(real, num, seed):
    """(reference, rest): ``num`` real images drawn with ``seed``, and all the others."""
    order = np.random.RandomState([seed, 0xE7]).permutation(len(real))
    num = min(num, len(real) // 2)
    return real[np.sort(order[:num])], real[np.sort(order[num:])]


def _timed(timings, name, func, *args, **kwargs):
    start = time.time()
    result = func(*args, **kwargs)
    timings[name] = round(time.time() - start, 3)
    return result


def evaluate_images(fake, real_reference, real_rest=None, seed=0, face_rate_real=True):
    """Every metric of ``fake`` against real images; a JSON-ready dict.

    Parameters
    ----------
    fake : numpy.ndarray
        uint8 NHWC generated images.
    real_reference : numpy.ndarray
        uint8 NHWC real images, same size (the comparison set).
    real_rest : numpy.ndarray or None
        Other real images, the training reference of the memorisation check (skipped if None).
    seed : int
        Seed of every metric's random choices.
    """
    timings = {}
    out = {}
    swd = _timed(timings, 'swd', sliced_wasserstein_distance, real_reference, fake, seed=seed)
    out.update(swd=swd['swd'], swd_levels=swd['swd_levels'], swd_resolutions=swd['resolutions'])
    out['face_rate'] = _timed(timings, 'face_rate', face_detection_rate, fake)
    if face_rate_real:
        out['face_rate_real'] = _timed(timings, 'face_rate_real', face_detection_rate,
                                       real_reference)
    out['diversity'] = _timed(timings, 'diversity', diversity, fake, seed=seed)
    out['diversity_real'] = _timed(timings, 'diversity_real', diversity, real_reference, seed=seed)
    if real_rest is not None and len(real_rest) >= 2:
        rest = real_rest[:MAX_MEMORIZATION_REFERENCE]
        out['memorization'] = _timed(timings, 'memorization', memorization_score, fake, rest,
                                     real_reference)
    out['timings'] = timings
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n', 2)[2])
    parser.prog = prog('gluoncv_gan.evaluate')  # the command's real name in usage lines
    parser.add_argument('model', nargs='?', choices=get_model_list(),
                        help='model-zoo name (with --pretrained or --params)')
    parser.add_argument('--pretrained', action='store_true', help='the published weights')
    parser.add_argument('--params', default=None,
                        help='weights: model.params, a checkpoint folder or a run folder')
    parser.add_argument('--ema', action='store_true',
                        help='with a checkpoint or run folder: its moving-average generator')
    parser.add_argument('--fake', default=None,
                        help='ready-made images instead of a model: a folder or a uint8 NHWC .npy')
    parser.add_argument('--real', default='lfw_sample',
                        help='real images: lfw_sample, an LFW root, a folder or a .npy')
    parser.add_argument('--num-samples', type=int, default=2000,
                        help='generated images, and real images in the comparison set')
    parser.add_argument('--seed', type=int, default=0, help='seed of latents and metrics')
    parser.add_argument('--json', default=None, help='write the results here')
    parser.add_argument('--grid', default=None, help='write a grid of 64 samples here (.png)')
    parser.add_argument('--gpus', default='', help='GPU id to generate on; empty for CPU')
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.model is not None and args.fake is not None:
        parser.error('give a model name or --fake, not both')
    if args.model is None and args.fake is None:
        parser.error('give a model name (with --pretrained or --params) or --fake')
    if args.num_samples < 10:
        parser.error('--num-samples must be at least 10')
    return args


def print_table(result, stream=None):
    """Write the main numbers of ``result`` as a two-column table (to stdout by default)."""
    stream = stream or sys.stdout
    mem = result.get('memorization')
    rows = [('SWD x1e3 (avg over levels)', '%.2f' % result['swd']),
            ('SWD per level %s' % result['swd_resolutions'],
             ', '.join('%.2f' % v for v in result['swd_levels'])),
            ('face-detection rate', '%.3f (real: %s)' % (
                result['face_rate'], '%.3f' % result['face_rate_real']
                if 'face_rate_real' in result else 'n/a')),
            ('diversity (mean pair distance)', '%.4f (real: %.4f)' % (result['diversity'],
                                                                       result['diversity_real']))]
    if mem:
        rows.append(('memorisation', 'copied fraction %.3f, NN distance ratio %.3f: %s' % (
            mem['copied_fraction'], mem['ratio'], 'passed' if mem['passed'] else 'FAILED')))
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        stream.write('%s  %s\n' % (name.ljust(width), value))


@command(expected=(DownloadError,))
def main(argv=None):
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    args = parse_args(argv)
    for flag, path in (('--json', args.json), ('--grid', args.grid)):
        if path:  # before the metrics are computed, not after
            check_output_path(path, flag)
    ctx = mx.gpu(int(args.gpus)) if args.gpus.strip() else mx.cpu()
    start = time.time()
    try:
        if args.fake:
            fake = load_images(args.fake, _probe_size(args.fake))
            size, source = fake.shape[1], {'fake': os.path.abspath(args.fake)}
        else:
            if not (args.pretrained or args.params):
                logger.warning('Evaluating an untrained %s (random weights): pass --params or '
                               '--pretrained for a trained one.', args.model)
            net = load_generator(args.model, args.pretrained, args.params, args.ema, ctx)
            size = net.resolution
            gen_start = time.time()
            fake = generate_images(net, args.num_samples, seed=args.seed, ctx=ctx)
            source = {'model': args.model, 'pretrained': args.pretrained,
                      'params': args.params and os.path.abspath(args.params), 'ema': args.ema,
                      'generate_seconds': round(time.time() - gen_start, 3)}
        real = load_images(args.real, size)
        reference, rest = split_real(real, args.num_samples, args.seed)
        result = evaluate_images(fake, reference, rest, seed=args.seed)
    except (ValueError, FileNotFoundError, DownloadError) as err:
        sys.exit('error: %s' % err)
    result.update(settings=dict(source, real=args.real, seed=args.seed, resolution=int(size),
                                num_samples=args.num_samples),
                  counts={'fake': int(len(fake)), 'real_reference': int(len(reference)),
                          'real_memorization_reference': int(min(len(rest),
                                                                 MAX_MEMORIZATION_REFERENCE))},
                  total_seconds=round(time.time() - start, 3))
    print_table(result)
    if args.json:
        with atomic_path(args.json) as tmp:
            with open(tmp, 'w') as f:
                json.dump(result, f, indent=1)
        logger.info('Wrote %s', args.json)
    if args.grid:
        save_image(args.grid, make_grid(fake[:64]))
        logger.info('Wrote %s', args.grid)
    return result


def _probe_size(source):
    """Image size of a --fake source: the first image of a folder (None for an .npy)."""
    if source.endswith('.npy'):
        return None
    from .data.lfw import IMAGE_EXTENSIONS
    for folder, _, names in sorted(os.walk(os.path.expanduser(source))):
        for name in sorted(names):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                img = cv2.imread(os.path.join(folder, name))
                if img is not None:
                    return min(img.shape[:2])
    raise FileNotFoundError('no readable image in %s' % source)


if __name__ == '__main__':
    main()
