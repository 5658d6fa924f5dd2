"""Sample faces from a gluoncv-gan model and save them as a grid.

Example::

    python -m gluoncv_gan.sample dcgan_lfw --num 64 --seed 0 --out faces.png
    python -m gluoncv_gan.sample dcgan_lfw --params runs/dcgan_lfw/model.params --out faces.png
"""
import argparse
import logging
import sys

import mxnet as mx
import numpy as np

from .model_zoo import get_model, get_model_list
from .utils.image import make_grid, save_image

__all__ = ['parse_args', 'main']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('model', choices=get_model_list(), help='model-zoo name')
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--pretrained', action='store_true', help='use the published weights')
    source.add_argument('--params', default=None,
                        help='weights to load: a model.params written by training')
    parser.add_argument('--num', type=int, default=64, help='number of images')
    parser.add_argument('--seed', type=int, default=0, help='seed of the latent vectors')
    parser.add_argument('--nrow', type=int, default=None, help='images per grid row')
    parser.add_argument('--out', default='faces.png', help='output image (.png or .jpg)')
    parser.add_argument('--gpus', default='', help='GPU id to run on; empty for CPU')
    args = parser.parse_args(argv)
    if args.num < 1:
        parser.error('--num must be at least 1')
    return args


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    args = parse_args(argv)
    ctx = mx.gpu(int(args.gpus.split(',')[0])) if args.gpus.strip() else mx.cpu()
    try:
        net = get_model(args.model, pretrained=args.pretrained, ctx=ctx)
    except ValueError as err:
        sys.exit('error: %s' % err)
    if args.params:
        net.load_parameters(args.params, ctx=ctx)
    elif not args.pretrained:
        logging.warning('Sampling from an untrained %s (random weights): pass --params or '
                        '--pretrained for real faces.', args.model)
    images = net.generate(args.num, ctx=ctx, seed=args.seed)
    save_image(args.out, make_grid(images, nrow=args.nrow))
    logging.info('Wrote %d samples of %s to %s', args.num, args.model, args.out)
    return np.asarray(images.shape)


if __name__ == '__main__':
    main()
