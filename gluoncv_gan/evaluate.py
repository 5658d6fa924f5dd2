"""Measure how good a generator is: SWD, face rate, diversity, memorisation, sharpness, FID, KID, PR.

Examples::

    python -m gluoncv_gan.evaluate dcgan_lfw --pretrained --real ~/.mxnet/datasets/lfw
    python -m gluoncv_gan.evaluate dcgan_lfw --params runs/dcgan_lfw/model.params --real lfw_sample
    python -m gluoncv_gan.evaluate --fake samples.npy --real lfw_sample --json metrics.json
    python -m gluoncv_gan.evaluate --real-floor --size 128 --real ~/.mxnet/datasets/lfw
    python -m gluoncv_gan.evaluate dcgan_lfw --pretrained --metrics fid,kid,pr --num-samples 10000 \
        --real ~/.mxnet/datasets/lfw

``--fake`` and ``--real`` take ``lfw_sample`` (the bundled faces), an LFW root, a folder of
images or a uint8 NHWC RGB ``.npy``. What each metric and flag means: docs/evaluation.md.
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

from .model_zoo import get_model_list
from .metrics.inception import FIDUnavailable, check_available, reference_features
from .pipeline.evaluation import (INCEPTION_METRICS, MAX_MEMORIZATION_REFERENCE, downscale,
                                  evaluate_images, load_images, other_real_indices,
                                  parse_metrics, split_real_indices)
from .pipeline.generator import load_generator
from .pipeline.sampling import generate_images
from .utils.command_line import add_debug_flag, check_output_path, command, prog, seed_argument
from .utils.download import DownloadError
from .utils.fileio import atomic_path
from .utils.image import make_grid, save_image

__all__ = ['parse_args', 'print_table', 'main']

logger = logging.getLogger(__name__)


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
    parser.add_argument('--real-floor', action='store_true',
                        help='instead of a model: other real images, the floor of every metric')
    parser.add_argument('--size', type=int, default=None,
                        help='compare at this size: samples are downscaled to it (default: their '
                             'own size; 64 with --real-floor)')
    parser.add_argument('--real', default='lfw_sample',
                        help='real images: lfw_sample, an LFW root, a folder or a .npy')
    parser.add_argument('--num-samples', type=int, default=2000,
                        help='generated images, and real images in the comparison set')
    parser.add_argument('--seed', type=seed_argument, default=0, help='seed of latents and metrics')
    parser.add_argument('--metrics', default='default',
                        help='comma-separated: swd, face, diversity, memorization, sharpness, '
                             'fid, kid, pr; all; default (all but fid, kid, pr)')
    parser.add_argument('--json', default=None, help='write the results here')
    parser.add_argument('--grid', default=None, help='write a grid of 64 samples here (.png)')
    parser.add_argument('--gpus', default='', help='GPU id to generate on; empty for CPU')
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    sources = sum((args.model is not None, args.fake is not None, args.real_floor))
    if sources > 1:
        parser.error('give only one of: a model name, --fake, --real-floor')
    if sources == 0:
        parser.error('give a model name (with --pretrained or --params), --fake or --real-floor')
    if args.size is not None and args.size < 16:
        parser.error('--size must be at least 16')
    if args.num_samples < 10:
        parser.error('--num-samples must be at least 10')
    try:
        args.metrics = parse_metrics(args.metrics)
    except ValueError as err:
        parser.error('--metrics: %s' % err)
    return args


def print_table(result, stream=None):
    """Write the main numbers of ``result`` as a two-column table (to stdout by default)."""
    stream = stream or sys.stdout
    rows = []
    if 'swd' in result:
        rows += [('SWD x1e3 (avg over levels)', '%.2f' % result['swd']),
                 ('SWD per level %s' % result['swd_resolutions'],
                  ', '.join('%.2f' % v for v in result['swd_levels']))]
    if 'face_rate' in result:
        rows.append(('face-detection rate', '%.3f (real: %s)' % (
            result['face_rate'], '%.3f' % result['face_rate_real']
            if 'face_rate_real' in result else 'n/a')))
    if 'diversity' in result:
        rows.append(('diversity (mean pair distance)', '%.4f (real: %.4f)' % (
            result['diversity'], result['diversity_real'])))
    mem = result.get('memorization')
    if mem:
        rows.append(('memorisation', 'copied fraction %.3f, NN distance ratio %.3f: %s' % (
            mem['copied_fraction'], mem['ratio'], 'passed' if mem['passed'] else 'FAILED')))
    if 'sharpness' in result:
        rows.append(('sharpness (Laplacian energy / real)', '%.3f' % result['sharpness']))
    counts = result.get('inception_counts', {})
    if 'fid' in result:
        rows.append(('FID (%d vs %d real)' % (counts['fake'], counts['real']),
                     '%.2f' % result['fid']))
        if result['fid_by_count']:
            rows.append(('FID of the first N samples', ', '.join(
                '%s: %.2f' % (n, v) for n, v in result['fid_by_count'].items())))
    if 'kid' in result:
        rows.append(('KID x1e3 (subsets of %d)' % result['kid_subset_size'], '%.2f +- %.2f' % (
            1e3 * result['kid'], 1e3 * result['kid_std'])))
    if 'precision' in result:
        rows.append(('precision / recall (k=%d)' % result['pr_k'], '%.3f / %.3f' % (
            result['precision'], result['recall'])))
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
    if any(m in INCEPTION_METRICS for m in args.metrics):
        try:  # before anything is generated
            check_available()
        except FIDUnavailable as err:
            sys.exit('error: %s' % err)
    ctx = mx.gpu(int(args.gpus)) if args.gpus.strip() else mx.cpu()
    start = time.time()
    try:
        fake, size, source = _fake_images(args, ctx)
        real = load_images(args.real, size)
        reference, rest = split_real_indices(len(real), args.num_samples, args.seed)
        floor = None
        if args.real_floor:  # as many other real images as the reference set has
            floor = other_real_indices(rest, len(reference), args.seed)
            fake = real[floor]
        real_features, fake_features, fid_source = _inception_inputs(args, real, floor)
        result = evaluate_images(fake, real[reference], real[rest], seed=args.seed,
                                 metrics=args.metrics, real_features=real_features,
                                 fake_features=fake_features)
    except (ValueError, FileNotFoundError, DownloadError, FIDUnavailable) as err:
        sys.exit('error: %s' % err)
    result.update(settings=dict(source, real=args.real, seed=args.seed, resolution=int(size),
                                num_samples=args.num_samples, metrics=list(args.metrics)),
                  counts={'fake': int(len(fake)), 'real_reference': int(len(reference)),
                          'real_memorization_reference': int(min(len(rest),
                                                                 MAX_MEMORIZATION_REFERENCE))},
                  total_seconds=round(time.time() - start, 3))
    if fid_source:
        result['counts']['real_inception_reference'] = int(len(real_features))
        result['inception_reference'] = fid_source
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


def _fake_images(args, ctx):
    """(uint8 NHWC images or None for the floor, their size, a description of the source)."""
    if args.real_floor:
        return None, args.size or 64, {'fake': 'other real images (--real-floor)'}
    if args.fake:
        fake = load_images(args.fake, _probe_size(args.fake))
        source = {'fake': os.path.abspath(args.fake)}
    else:
        if not (args.pretrained or args.params):
            logger.warning('Evaluating an untrained %s (random weights): pass --params or '
                           '--pretrained for a trained one.', args.model)
        net = load_generator(args.model, args.pretrained, args.params, args.ema, ctx)
        gen_start = time.time()
        fake = generate_images(net, args.num_samples, seed=args.seed, ctx=ctx)
        source = {'model': args.model, 'pretrained': args.pretrained,
                  'params': args.params and os.path.abspath(args.params), 'ema': args.ema,
                  'generate_seconds': round(time.time() - gen_start, 3)}
    if args.size:
        return downscale(fake, args.size), args.size, source
    return fake, fake.shape[1], source


def _inception_inputs(args, real, floor):
    """(real features, fake features or None, cache description) for FID, KID and PR.

    The real features are those of every real image, from the cache; for the floor, the images
    drawn as samples are left out of the reference and their cached features are the samples'.
    """
    if not any(m in INCEPTION_METRICS for m in args.metrics):
        return None, None, None
    features, cache = reference_features(real)
    if floor is None:
        return features, None, cache
    keep = np.ones(len(real), bool)
    keep[floor] = False
    return features[keep], features[floor], cache


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
