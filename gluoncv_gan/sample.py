"""Sample faces from a gluoncv-gan model: a grid image, a latent walk, or raw images.

Examples::

    python -m gluoncv_gan.sample dcgan_lfw --pretrained --num 64 --seed 0 --out faces.png
    python -m gluoncv_gan.sample dcgan_lfw --params runs/dcgan_lfw --out faces.png
    python -m gluoncv_gan.sample dcgan_lfw --params runs/dcgan_lfw --interpolate --rows 8 \\
        --steps 10 --out walk.png
    python -m gluoncv_gan.sample dcgan_lfw --params runs/dcgan_lfw --num 2000 --out fake.npy
    python -m gluoncv_gan.sample resgan_lfw --pretrained --compare-with dcgan_lfw --out both.png

``--params`` takes a pair's ``model.params``, a ``generator_ema.params``, a checkpoint folder or
a run folder (its latest checkpoint); without weights the network is untrained. ``--num``
samples are ``net.generate(num, seed=seed)``. A walk (``--interpolate``) shows one row per pair
of latents drawn with ``--seed``, ``--steps`` images from start to end along a spherical path
(:func:`slerp`; README.md#sample says why). ``npy`` output is uint8 (N, H, W, 3) RGB in the
same order. ``--compare-with NAME`` puts the published NAME's images of the same latents beside
the grid (or walk). Files are written atomically.
"""
import argparse
import logging
import os
import sys

import mxnet as mx
import numpy as np

from .model_zoo import get_model_list
from .pipeline.generator import load_generator
from .pipeline.sampling import sample_images
from .pipeline.side_by_side import write_side_by_side
from .utils.command_line import UserError, add_debug_flag, check_output_path, command, prog, seed_argument
from .utils.download import DownloadError
from .utils.fileio import atomic_path
from .utils.image import make_grid, save_image

__all__ = ['slerp', 'interpolation_latents', 'parse_args', 'main']

FORMATS = ('png', 'npy')
EXTENSIONS = ('.png', '.jpg', '.jpeg', '.npy')
DEFAULT_NUM = 64


def slerp(a, b, t):
    """Spherical interpolation between latent vectors ``a`` and ``b``.

    The direction moves along the great circle from ``a``'s to ``b``'s at constant angular
    speed; the length goes linearly from ``|a|`` to ``|b|``. The result's norm is therefore
    always between the endpoints' norms, and ``t = 0`` and ``t = 1`` give ``a`` and ``b``
    exactly.

    Parameters
    ----------
    a, b : array_like
        Endpoints, shape (..., nz) (broadcast against each other), non-zero.
    t : float or array_like
        Fraction of the way from ``a`` to ``b``, in [0, 1]; an array of shape (...) gives one
        point per leading index.

    Returns
    -------
    numpy.ndarray
        float64, the broadcast shape of ``a``, ``b`` and ``t[..., None]``.

    Raises
    ------
    ValueError
        If an endpoint is zero, if ``a`` and ``b`` point in exactly opposite directions (no
        unique great circle), or if ``t`` is outside [0, 1].
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if np.any(t < 0) or np.any(t > 1) or not np.all(np.isfinite(t)):
        raise ValueError('t must be in [0, 1], got %r' % (t,))
    t = t[..., None]
    norm_a = np.linalg.norm(a, axis=-1, keepdims=True)
    norm_b = np.linalg.norm(b, axis=-1, keepdims=True)
    if np.any(norm_a == 0) or np.any(norm_b == 0):
        raise ValueError('cannot interpolate from or to a zero latent vector (it has no '
                         'direction): draw the endpoints from N(0, 1)')
    unit_a, unit_b = a / norm_a, b / norm_b
    cos = np.clip(np.sum(unit_a * unit_b, axis=-1, keepdims=True), -1.0, 1.0)
    if np.any(cos <= -1.0 + 1e-12):
        raise ValueError('the endpoints point in opposite directions, so the great circle '
                         'between them is not unique: pick other endpoints')
    omega = np.arccos(cos)
    sin_omega = np.sin(omega)
    nearly_parallel = sin_omega < 1e-8
    safe_sin = np.where(nearly_parallel, 1.0, sin_omega)
    direction = np.where(nearly_parallel,
                         (1 - t) * unit_a + t * unit_b,  # the arc is a straight line here
                         (np.sin((1 - t) * omega) * unit_a + np.sin(t * omega) * unit_b)
                         / safe_sin)
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    out = ((1 - t) * norm_a + t * norm_b) * direction
    out = np.where(t == 0, a, out)
    return np.where(t == 1, b, out)


def interpolation_latents(nz, rows, steps, seed):
    """Latent vectors of a walk: ``rows`` pairs drawn with ``seed``, ``steps`` points each.

    Parameters
    ----------
    nz : int
        Size of a latent vector.
    rows : int
        Number of pairs (walks).
    steps : int
        Points per walk, both endpoints included (at least 2).
    seed : int
        Seed of ``numpy.random.RandomState``; the pairs are
        ``RandomState(seed).standard_normal((2, rows, nz))`` (starts, then ends).

    Returns
    -------
    numpy.ndarray
        float32, shape (rows * steps, nz, 1, 1): walk 0 first, each from start to end.
    """
    if rows < 1 or steps < 2:
        raise ValueError('a walk needs rows >= 1 and steps >= 2, got rows=%d, steps=%d'
                         % (rows, steps))
    starts, ends = np.random.RandomState(seed).standard_normal((2, rows, nz))
    t = np.linspace(0.0, 1.0, steps)
    walk = slerp(starts[:, None, :], ends[:, None, :], t[None, :])  # (rows, steps, nz)
    return walk.reshape(rows * steps, nz, 1, 1).astype(np.float32)


def _format_of(path):
    return 'npy' if os.path.splitext(path)[1].lower() == '.npy' else 'png'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n', 2)[2])
    parser.prog = prog('gluoncv_gan.sample')  # the command's real name in usage lines
    parser.add_argument('model', choices=get_model_list(), help='model-zoo name')
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--pretrained', action='store_true', help='use the published weights')
    source.add_argument('--params', default=None,
                        help='weights: a .params file, a checkpoint folder or a run folder')
    parser.add_argument('--ema', action='store_true',
                        help='with a checkpoint or run folder, its moving-average generator')
    parser.add_argument('--num', type=int, default=None,
                        help='number of samples (default %d; not with --interpolate)'
                        % DEFAULT_NUM)
    parser.add_argument('--interpolate', action='store_true',
                        help='latent walks: --rows pairs, --steps images each (see below)')
    parser.add_argument('--rows', type=int, default=8, help='walks of --interpolate (default 8)')
    parser.add_argument('--steps', type=int, default=8,
                        help='images per walk of --interpolate, endpoints included (default 8)')
    parser.add_argument('--seed', type=seed_argument, default=0,
                        help='seed of the latent vectors (default 0)')
    parser.add_argument('--nrow', type=int, default=None,
                        help='images per grid row (default: square grid; --steps for a walk)')
    parser.add_argument('--format', choices=FORMATS, default=None,
                        help='png: a grid picture; npy: uint8 (N, H, W, 3) RGB images '
                             '(default: from the extension of --out)')
    parser.add_argument('--out', default=None,
                        help='output file (default faces.png, or faces.npy with --format npy)')
    parser.add_argument('--compare-with', default=None, choices=get_model_list(), metavar='NAME',
                        help="beside the grid, the published NAME's images of the same latents")
    parser.add_argument('--gpus', default='', help='GPU id to run on; empty for CPU')
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if args.ema and not args.params:
        parser.error('--ema needs --params (a checkpoint or run folder)')
    if args.interpolate:
        if args.num is not None:
            parser.error('--num does not apply to --interpolate: it makes --rows x --steps '
                         'images')
        if args.rows < 1 or args.steps < 2:
            parser.error('--interpolate needs --rows >= 1 and --steps >= 2')
        if args.nrow is not None and args.nrow != args.steps:
            parser.error('a walk is drawn one per row: leave out --nrow (it is --steps)')
        args.num, args.nrow = args.rows * args.steps, args.steps
    elif args.num is None:
        args.num = DEFAULT_NUM
    if args.num < 1:
        parser.error('--num must be at least 1')
    if args.nrow is not None and args.nrow < 1:
        parser.error('--nrow must be at least 1')
    if args.out is None:
        args.out = 'faces.' + (args.format or 'png')
    if args.format is None:
        args.format = _format_of(args.out)
    elif args.format != _format_of(args.out):
        parser.error('--format %s does not match --out %s: use the extension %s'
                     % (args.format, args.out,
                        '.npy' if args.format == 'npy' else '.png (or .jpg)'))
    if args.compare_with and args.format == 'npy':
        parser.error('--compare-with makes a picture: use --out with .png or .jpg')
    return args


def _save_npy(path, images):
    """Write ``images`` to ``path`` as .npy, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            np.save(f, images)


@command(expected=(DownloadError,))
def main(argv=None):
    """Run the sampler; returns the images written, uint8 (N, H, W, 3) RGB."""
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    args = parse_args(argv)
    if os.path.splitext(args.out)[1].lower() not in EXTENSIONS:
        raise UserError('--out %s has an extension that is neither a picture nor an array; use '
                        '.png or .jpg for a grid, .npy for the images' % args.out)
    check_output_path(args.out, '--out')
    ctx = mx.gpu(int(args.gpus.split(',')[0])) if args.gpus.strip() else mx.cpu()
    if args.params is not None and not os.path.exists(os.path.expanduser(args.params)):
        sys.exit('error: --params %s does not exist: pass a .params file, a checkpoint folder '
                 'or a run folder' % args.params)
    try:
        net = load_generator(args.model, pretrained=args.pretrained, params=args.params,
                             ema=args.ema, ctx=ctx)
    except (ValueError, FileNotFoundError, DownloadError, mx.base.MXNetError) as err:
        message = str(err).strip().splitlines() or [type(err).__name__]
        sys.exit('error: cannot load %s: %s' % (args.params or args.model, message[-1]))
    if not (args.params or args.pretrained):
        logging.warning('Sampling from an untrained %s (random weights): pass --params or '
                        '--pretrained for real faces.', args.model)
    if args.interpolate:
        z = interpolation_latents(net.nz, args.rows, args.steps, args.seed)
        what = '%d walks of %d steps' % (args.rows, args.steps)
    else:
        z = net.sample_latent(args.num, ctx=ctx, seed=args.seed).asnumpy()  # net.generate's
        what = '%d samples' % args.num
    images = sample_images(net.generator, z, ctx=ctx)
    if args.compare_with:
        title = '%s (%s)' % (args.model, 'published' if args.pretrained else
                             args.params or 'untrained')
        if not write_side_by_side(args.out, net.generator, z, args.compare_with, title,
                                  ctx=ctx, nrow=args.nrow):
            sys.exit('error: --compare-with %s: its published weights are not available (see '
                     'the warning above)' % args.compare_with)
    elif args.format == 'npy':
        _save_npy(args.out, images)
    else:
        save_image(args.out, make_grid(images, nrow=args.nrow))
    logging.info('Wrote %s of %s to %s', what, args.model, args.out)
    return images


if __name__ == '__main__':
    main()
