"""The parts of a training run, built from a resolved config (:mod:`gluoncv_gan.utils.config`):
devices, dataset, networks, trainers and the fixed latent batch of the sample grids."""
import mxnet as mx
import numpy as np

from ..data import LFW, FaceFolder, LFWSample
from ..model_zoo import get_model
from ..utils.amp import enable_bfloat16
from ..utils.config import ConfigError, arch_kwargs
from ..utils.seeds import FIXED_NOISE_SALT

__all__ = ['contexts', 'build_dataset', 'build_net', 'build_trainers', 'fixed_noise_for',
           'apply_hyperparameters']


def contexts(gpus, cpus=1):
    """Devices from a '0,1' string; when it is empty, ``cpus`` CPU contexts (cpu(0), cpu(1)...)."""
    ids = [g.strip() for g in gpus.split(',') if g.strip()]
    if ids and cpus > 1:
        raise ConfigError('gpus %r and cpus %d both ask for devices: use one of --gpus and --cpus'
                          % (gpus, cpus))
    return [mx.gpu(int(i)) for i in ids] or [mx.cpu(i) for i in range(cpus)]


def build_dataset(config):
    """The training dataset of ``config`` (with its uint8 cache)."""
    workers = config['num_workers'] or None
    if config['dataset'] == 'lfw_sample':
        return LFWSample(size=config['image_size'], num_workers=workers)
    if config['dataset'] == 'folder':
        return FaceFolder(config['data_dir'], size=config['image_size'], num_workers=workers)
    return LFW(root=config['data_dir'], size=config['image_size'], num_workers=workers)


def build_net(config, ctx):
    """The model-zoo pair of ``config``, initialised (Normal(0.02)) on ``ctx``."""
    if config['amp']:
        enable_bfloat16()
    # the initial weights come from MXNet's global generator: seed it, so that they depend on
    # the run's seed only, not on what the process drew before (a new process starts as seed 0)
    mx.random.seed(config['seed'])
    net = get_model(config['model'], ctx=ctx, **arch_kwargs(config))
    if net.resolution != config['image_size']:
        raise ConfigError('model %s makes %dx%d images but image_size is %d: use a model of '
                          'that size or change image_size' % (config['model'], net.resolution,
                                                              net.resolution, config['image_size']))
    if config['hybridize'] and not config['amp']:
        # --amp's casts wrap MXNet's imperative operators, and a hybridized net under MXNet
        # 1.9.1's bfloat16 AMP fails in its backward pass (see gluoncv_gan.utils.amp)
        net.generator.hybridize(static_alloc=True, static_shape=True)
        net.discriminator.hybridize(static_alloc=True, static_shape=True)
    return net


def build_trainers(net, config, make_trainer=mx.gluon.Trainer):
    """Trainers of the generator (rate ``lr``) and the discriminator (``lr_d``).

    Adam is the tutorial's optimiser; RMSprop is the WGAN paper's (``beta2`` is its decay of the
    mean squared gradient, ``beta1`` is unused). ``make_trainer(params, optimizer,
    optimizer_params)`` builds each trainer (data-parallel: ``Distribution.make_trainer``).
    """
    if config['optimizer'] == 'rmsprop':
        opts = {'gamma1': config['beta2']}
    else:
        opts = {'beta1': config['beta1'], 'beta2': config['beta2']}
    return (make_trainer(net.generator.collect_params(), config['optimizer'],
                         dict(opts, learning_rate=config['lr'])),
            make_trainer(net.discriminator.collect_params(), config['optimizer'],
                         dict(opts, learning_rate=config['lr_d'])))


def fixed_noise_for(config):
    """The latent batch of a run's sample grids, drawn from the run's seed.

    Parameters
    ----------
    config : dict
        A resolved config: ``seed``, ``num_samples`` and ``nz`` are used.

    Returns
    -------
    numpy.ndarray
        float32 (num_samples, nz, 1, 1), the same for every run with that seed and shape.
    """
    rng = np.random.RandomState([config['seed'], FIXED_NOISE_SALT])
    return rng.standard_normal((config['num_samples'], config['nz'], 1, 1)).astype(np.float32)


def apply_hyperparameters(trainer_g, trainer_d, config):
    """Set the config's learning rates and optimiser coefficients on both trainers."""
    for trainer, rate in ((trainer_g, config['lr']), (trainer_d, config['lr_d'])):
        trainer.set_learning_rate(rate)
        optimizer = trainer.optimizer
        if config['optimizer'] == 'rmsprop':
            optimizer.gamma1 = config['beta2']
        else:
            optimizer.beta1, optimizer.beta2 = config['beta1'], config['beta2']
