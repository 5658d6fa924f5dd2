"""Export a trained generator: model-store weights, or a deployable symbol or ONNX file.

Example::

    python -m gluoncv_gan.export runs/dcgan_lfw --name dcgan_lfw --out-dir gluoncv_gan/model_zoo/weights
    python -m gluoncv_gan.export runs/dcgan_lfw --format symbol --out-dir deploy
    python -m gluoncv_gan.export dcgan_lfw --pretrained --format onnx --out-dir deploy

``--format zip`` (the default) writes ``{name}-{sha1[:8]}.params`` and ``.zip`` from the run's
best checkpoint by SWD and prints the line to add to ``_model_sha1_versions`` in
``gluoncv_gan/model_zoo/model_store.py``; ``symbol`` and ``onnx`` write a generator that takes
the latents (N, nz, 1, 1) named ``data`` and returns (N, 3, H, W) images in [-1, 1].
See docs/model_zoo.md#publishing-weights---format-zip and the section after it.
"""
import argparse
import json
import logging
import os
import sys
import tempfile
import zipfile

import mxnet as mx
import numpy as np

from ..estimator.checkpoint import find_checkpoint, read_state, reading_checkpoints
from ..model_zoo import get_model, get_model_list
from ..pipeline.generator import load_checkpoint_pair
from ..utils.command_line import add_debug_flag, command, prog
from ..utils.config import arch_kwargs
from ..utils.download import file_checksum
from ..utils.fileio import atomic_path

FORMATS = ('zip', 'symbol', 'onnx')

__all__ = ['choose_checkpoint', 'export_pair', 'main']

logger = logging.getLogger(__name__)


def epoch_checkpoints(path, count, end_epoch=None):
    """The ``count`` newest epoch-end checkpoints of a run (or of a folder of checkpoints).

    With ``end_epoch``, the ``count`` that end with the checkpoint saved after epoch ``end_epoch``.
    """
    from ..estimator.checkpoint import list_checkpoints
    folder = os.path.join(path, 'checkpoints')
    found = list_checkpoints(folder if os.path.isdir(folder) else path)
    ends = [(read_state(ckpt)['epoch'], ckpt) for _, ckpt in found if read_state(ckpt)['batch'] == 0]
    if end_epoch is not None:
        if end_epoch not in [epoch for epoch, _ in ends]:
            raise FileNotFoundError('%s has no checkpoint saved after epoch %d (epoch-end '
                                    'checkpoints kept: %s): pass one of those to --end-epoch'
                                    % (path, end_epoch,
                                       ', '.join(str(epoch) for epoch, _ in ends) or 'none'))
        ends = [(epoch, ckpt) for epoch, ckpt in ends if epoch <= end_epoch]
    if len(ends) < count:
        raise FileNotFoundError('%s has %d epoch-end checkpoints%s, fewer than --average %d: train '
                                'with keep_checkpoints >= %d and checkpoint_interval 0'
                                % (path, len(ends), '' if end_epoch is None else
                                   ' up to epoch %d' % end_epoch, count, count))
    return [ckpt for _, ckpt in ends[-count:]]


def average_generator(net, checkpoints, ctx=None, recalibration_batches=64):
    """Set ``net.generator`` to the mean of the raw generators of ``checkpoints``.

    Trainable weights are averaged; BatchNorm statistics are then recalibrated for them from
    ``recalibration_batches`` batches of 128 latents (more than the moving average's 8 per use:
    an export is done once, and 64 batches gave a lower SWD).
    """
    from ..estimator.ema import recalibrate_batchnorm
    params = net.generator._collect_params_with_prefix()
    sums = {}
    for ckpt in checkpoints:
        loaded = mx.nd.load(os.path.join(ckpt, 'model.params'))
        for key, param in params.items():
            if param.grad_req != 'null':
                value = loaded['generator.' + key].astype('float32')
                sums[key] = value if key not in sums else sums[key] + value
    for key, total in sums.items():
        params[key].set_data(total / len(checkpoints))
    recalibrate_batchnorm(net.generator, net.nz, ctx=ctx, batches=recalibration_batches)
    return net


def choose_checkpoint(path):
    """The checkpoint to export: ``path`` itself, its run's best by SWD, or its latest.

    ``best.json`` records the best checkpoint's absolute path; when the run folder was moved or
    copied since, the checkpoint of the same name in this run's ``checkpoints/`` is used.
    """
    best = os.path.join(path, 'best.json')
    if os.path.isfile(best):
        try:
            with open(best) as f:
                chosen = json.load(f)['checkpoint']
            if not isinstance(chosen, str):
                raise TypeError('its checkpoint is not a path')
        except (OSError, ValueError, KeyError, TypeError) as err:
            logger.warning('%s is damaged (%s): exporting the latest checkpoint instead; pass a '
                           'checkpoint folder to export another', best,
                           ' '.join(str(err).split()) or type(err).__name__)
            return find_checkpoint(path)
        for candidate in (chosen, os.path.join(path, 'checkpoints', os.path.basename(chosen))):
            if os.path.isdir(candidate):
                return candidate
        logger.warning('best.json names %s, which is gone; exporting the latest checkpoint',
                       chosen)
    return find_checkpoint(path)


def export_pair(net, name, out_dir, dtype='float16'):
    """Write ``{name}-{sha1[:8]}.params`` and ``.zip`` into ``out_dir``; return (sha1, zip path)."""
    os.makedirs(out_dir, exist_ok=True)
    arrays = {key: param.data().astype(dtype)
              for key, param in net._collect_params_with_prefix().items()}
    # a private staging name: two exports into one folder do not overwrite each other's file
    fd, staging = tempfile.mkstemp(prefix='.%s-export.' % name, suffix='.params', dir=out_dir)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o666 & ~umask)  # mkstemp makes 0600 files; publish with the usual mode
    try:
        mx.nd.save(staging, arrays)
    except BaseException:
        os.remove(staging)
        raise
    sha1 = file_checksum(staging, 'sha1')
    stem = '%s-%s' % (name, sha1[:8])
    params_path = os.path.join(out_dir, stem + '.params')
    os.replace(staging, params_path)
    zip_path = os.path.join(out_dir, stem + '.zip')
    with atomic_path(zip_path) as tmp:
        with zipfile.ZipFile(tmp, 'w', zipfile.ZIP_DEFLATED) as archive:
            archive.write(params_path, stem + '.params')
    return sha1, zip_path


def sample_difference(net, params_path, name, config, num=64, seed=0):
    """Largest absolute pixel difference (in [-1, 1] units) between the float32 pair's samples
    and those of the stored weights loaded back as float32."""
    other = get_model(name, **arch_kwargs(config))
    other.load_parameters(params_path, cast_dtype=True, dtype_source='current')
    a = net.generate(num, seed=seed).asnumpy()
    b = other.generate(num, seed=seed).asnumpy()
    return float(np.abs(a - b).max()), float(np.abs(a - b).mean())


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n', 2)[2])
    parser.prog = prog('gluoncv_gan.export')  # the command's real name in usage lines
    parser.add_argument('path', help='a run folder (its best checkpoint) or a checkpoint folder; '
                                     'with --pretrained, a model-zoo name')
    parser.add_argument('--format', default='zip', choices=FORMATS,
                        help='zip: model-store weights to publish (default); symbol: '
                             'generator-symbol.json + generator-0000.params; onnx: generator.onnx')
    parser.add_argument('--pretrained', action='store_true',
                        help='export the published weights of the model-zoo name PATH '
                             '(--format symbol or onnx)')
    parser.add_argument('--name', default=None, choices=get_model_list(),
                        help='model-zoo name (default: the run\'s model)')
    parser.add_argument('--no-ema', action='store_true',
                        help='export the raw generator even when the run kept a moving average')
    parser.add_argument('--average', type=int, default=None, metavar='K',
                        help='publish the mean of the raw generators of the K newest epoch-end '
                             'checkpoints (BatchNorm recalibrated) with the newest discriminator')
    parser.add_argument('--end-epoch', type=int, default=None, metavar='N',
                        help='with --average: the K epoch-end checkpoints ending after epoch N '
                             '(default: the newest)')
    parser.add_argument('--dtype', default='float16', choices=['float16', 'float32'],
                        help='storage type of the published weights')
    parser.add_argument('--out-dir', default='.', help='where the exported files go')
    add_debug_flag(parser)
    return parser.parse_args(argv)


def _fail(message):
    print('error: %s' % message, file=sys.stderr)
    sys.exit(2)


def export_deployable(net, out_dir, fmt):
    """Write ``net.generator`` in ``fmt`` ('symbol' or 'onnx') into ``out_dir``; log and return
    the paths, and the largest difference of the exported generator's images from the net's."""
    from . import deployable
    latent = np.random.RandomState(0).standard_normal((8, net.nz, 1, 1)).astype(np.float32)
    with mx.autograd.predict_mode():
        expected = net.generator(mx.nd.array(latent)).asnumpy()
    if fmt == 'symbol':
        paths = deployable.export_symbol(net.generator, out_dir)
        got = deployable.load_symbol(*paths)(mx.nd.array(latent)).asnumpy()
    else:
        paths = deployable.export_onnx(net.generator, out_dir)
        try:
            import onnxruntime
        except ImportError:
            got = None
        else:
            session = onnxruntime.InferenceSession(paths[0], providers=['CPUExecutionProvider'])
            got = session.run(None, {'data': latent})[0]
    for path in paths:
        logger.info('  %s (%.1f MB)', path, os.path.getsize(path) / 1e6)
    difference = None if got is None else float(np.abs(got - expected).max())
    if difference is not None:
        logger.info('  images of the exported generator vs the net: max |diff| %.2e', difference)
    return paths, difference


@command()
def main(argv=None):
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    args = parse_args(argv)
    if args.pretrained:
        if args.format == 'zip':
            _fail('--pretrained exports published weights, which are already in the model store: '
                  'add --format symbol or --format onnx')
        if args.path not in get_model_list():
            _fail('%s is not a model-zoo name: use one of %s' % (args.path,
                                                                 ', '.join(get_model_list())))
        net = get_model(args.path, pretrained=True)
        logger.info('Exporting the generator of the published %s as %s', args.path, args.format)
        try:
            return export_deployable(net, args.out_dir, args.format)
        except ImportError as err:
            _fail(err)
    if args.average is not None and args.average < 1:
        sys.exit('error: --average %d: give the number of checkpoints to average, 1 or more (or '
                 'leave --average out to export one checkpoint)' % args.average)
    if args.end_epoch is not None and not args.average:
        sys.exit('error: --end-epoch chooses the checkpoints of --average K: add --average')
    # a run being trained keeps the checkpoints being loaded until they are loaded
    with reading_checkpoints(args.path):
        try:
            averaged = epoch_checkpoints(args.path, args.average, args.end_epoch) \
                if args.average else None
            checkpoint = averaged[-1] if averaged else choose_checkpoint(args.path)
        except FileNotFoundError as err:
            sys.exit('error: %s' % err)
        net, used_ema, config = load_checkpoint_pair(checkpoint, args.name,
                                                     ema=not args.no_ema and not averaged)
        if averaged:
            average_generator(net, averaged)
            logger.info('Generator: the mean of %s',
                        ', '.join(os.path.basename(c) for c in averaged))
    name = args.name or config['model']
    if args.format != 'zip':
        logger.info('Exporting the %s generator of %s as %s',
                    'averaged' if averaged else 'moving-average' if used_ema else 'raw',
                    checkpoint, args.format)
        try:
            return export_deployable(net, args.out_dir, args.format)
        except ImportError as err:
            _fail(err)
    default = get_model(name, pretrained=False)
    arch = arch_kwargs(config)
    defaults = {'nz': default.nz, 'ngf': default.generator.ngf, 'ndf': default.discriminator.ndf,
                'skip_excitation': getattr(default.generator, 'skip_excitation', None),
                'discriminator': getattr(default, 'discriminator_kind', None)}
    if any(defaults[key] != value for key, value in arch.items()):
        given = ', '.join('%s=%r' % kv for kv in arch.items())
        logger.warning('The run\'s nets (%s) differ from %s\'s defaults: load these weights '
                       'with get_model(%r, pretrained=..., %s)', given, name, name, given)
    sha1, zip_path = export_pair(net, name, args.out_dir, args.dtype)
    params_path = zip_path[:-4] + '.params'
    max_diff, mean_diff = sample_difference(net, params_path, name, config)
    kind = 'averaged' if averaged else 'moving-average' if used_ema else 'raw'
    logger.info('Exported %s (%s generator, %s) from %s', name, kind, args.dtype, checkpoint)
    logger.info('  %s (%.1f MB), %s (%.1f MB)', params_path, os.path.getsize(params_path) / 1e6,
                zip_path, os.path.getsize(zip_path) / 1e6)
    logger.info('  samples vs the float32 checkpoint: max |diff| %.2e, mean |diff| %.2e '
                '(pixel range [-1, 1])', max_diff, mean_diff)
    logger.info('Add to _model_sha1_versions in gluoncv_gan/model_zoo/model_store.py:')
    print("    ('%s', '%s')," % (sha1, name))
    return sha1, zip_path
