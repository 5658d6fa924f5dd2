"""A model-zoo pair with the weights of a params file, a checkpoint or a run folder."""
import os

import mxnet as mx

from ..estimator.checkpoint import STATE_FILE, find_checkpoint, read_state, reading_checkpoints
from ..estimator.ema import recalibrate_batchnorm
from ..model_zoo import get_model
from ..utils.command_line import UserError
from ..utils.config import arch_kwargs, read_config_file

__all__ = ['load_generator', 'load_checkpoint_pair', 'saved_config']


def saved_config(folder):
    """The training config kept beside weights: a checkpoint's state.json or a run's config.yaml.

    Returns an empty dict when ``folder`` has neither.
    """
    if os.path.isfile(os.path.join(folder, STATE_FILE)):
        return read_state(folder).get('config') or {}
    path = os.path.join(folder, 'config.yaml')
    if os.path.isfile(path):
        return read_config_file(path)
    return {}


def _parameter_shapes(net):
    return {key: param.shape for key, param in net._collect_params_with_prefix().items()}


def _architecture(net):
    """A DCGAN pair's architecture in a few words, e.g. '64x64 images, BatchNorm discriminator'."""
    norm = getattr(net.discriminator, 'norm', 'batch')
    return '%dx%d images, %s discriminator' % (
        net.resolution, net.resolution,
        'spectrally normalised' if norm == 'spectral' else 'BatchNorm')


def _widths(config):
    """The network keys of a training config (those it holds), for ``get_model``."""
    return arch_kwargs(config)


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
    # a run being trained keeps the checkpoint being loaded until it is loaded
    with reading_checkpoints(path if os.path.isdir(path) else os.path.dirname(path)):
        return _load_weights(model, pretrained, path, ema, ctx)


def _load_weights(model, pretrained, path, ema, ctx):
    if os.path.isdir(path):
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
    config = saved_config(os.path.dirname(path))
    if str(config.get('model', model)).lower() != model.lower():
        raise ValueError('%s holds weights of %s, not %s: pass that model name'
                         % (path, config['model'], model))
    arch = _widths(config)
    net = get_model(model, pretrained=pretrained, ctx=ctx, **arch)
    try:
        loaded = mx.nd.load(path)
        # exported weights may be stored in float16 (gluoncv_gan.export): cast them back
        if any(k.startswith('generator.') for k in loaded):
            net.load_parameters(path, ctx=ctx, cast_dtype=True)
        else:
            net.generator.load_parameters(path, ctx=ctx, cast_dtype=True)
            # a moving average of the generator: BatchNorm statistics to match its weights
            recalibrate_batchnorm(net.generator, net.nz, ctx=ctx)
    except (AssertionError, mx.base.MXNetError) as err:
        lines = str(err).strip().splitlines() or [type(err).__name__]
        raise ValueError('cannot load %s into %s (%s): %s. Weights of other widths load when '
                         'the run\'s config.yaml or the checkpoint\'s state.json is beside them.'
                         % (path, model, ', '.join('%s=%s' % kv for kv in sorted(arch.items()))
                            or 'default widths', lines[-1]))
    return net


def load_checkpoint_pair(checkpoint, name=None, ema=True, ctx=None, recalibration_batches=8):
    """The DCGAN pair of a checkpoint (float32), with its moving-average generator if asked.

    Returns
    -------
    tuple
        (net, whether the moving average was loaded, the checkpoint's config).
    """
    config = read_state(checkpoint)['config']
    trained = config['model']
    net = get_model(name or trained, ctx=ctx or mx.cpu(), **_widths(config))
    if name and name != trained:
        own = get_model(trained, **_widths(config))
        if _parameter_shapes(own) != _parameter_shapes(net):
            raise UserError('checkpoint %s holds a %s pair (%s), and %s is another architecture '
                            '(%s): export it as %s (drop --name), or name a model of the same '
                            'architecture' % (checkpoint, trained, _architecture(own), name,
                                              _architecture(net), trained))
    params = os.path.join(checkpoint, 'model.params')
    try:
        net.load_parameters(params, ctx=ctx)
    except (AssertionError, mx.base.MXNetError) as err:
        lines = str(err).strip().splitlines() or [type(err).__name__]
        raise UserError('cannot load %s into %s: %s' % (params, name or trained, lines[-1])) \
            from None
    ema_path = os.path.join(checkpoint, 'generator_ema.params')
    used_ema = ema and os.path.isfile(ema_path)
    if used_ema:
        net.generator.load_parameters(ema_path, ctx=ctx)
        recalibrate_batchnorm(net.generator, net.nz, ctx=ctx, batches=recalibration_batches)
    return net, used_ema, config
