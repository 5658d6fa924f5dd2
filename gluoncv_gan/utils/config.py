"""Training configuration: a YAML file checked against a schema, then command-line overrides.

Every key has a type, a default and a rule; an unknown key, a wrong type or an impossible value
is a :class:`ConfigError` that names the key and what is allowed.
"""
import difflib
import math
import os

import yaml

from .cli import UserError
from .fileio import atomic_path

__all__ = ['ConfigError', 'KVSTORE_TYPES', 'SCHEMA', 'default_config', 'load_config',
           'validate_config', 'save_config', 'read_config_file']


# gradient reduction: one process ('device', 'local') or a parameter-server job ('dist_*')
KVSTORE_TYPES = ('device', 'local', 'dist_sync', 'dist_device_sync', 'dist_async')


class ConfigError(UserError, ValueError):
    """A configuration key or value is wrong."""


def _positive(value):
    return math.isfinite(value) and value > 0


def _non_negative(value):
    return math.isfinite(value) and value >= 0


def _power_of_two_16(value):
    return value >= 16 and value & (value - 1) == 0


def _probability(value):
    return 0 <= value < 1


# key: (types, default, rule or allowed values or None, what is allowed, in words)
SCHEMA = {
    'model': (str, 'dcgan_lfw', None, 'a gluoncv_gan model-zoo name'),
    'dataset': (str, 'lfw', ('lfw', 'lfw_sample', 'folder'), 'lfw, lfw_sample or folder'),
    'data_dir': ((str, type(None)), None, None,
                 'a folder (default: $MXNET_HOME/datasets/lfw for lfw; required for folder)'),
    'image_size': (int, 64, _power_of_two_16, 'a power of two >= 16'),
    'nz': (int, 100, _positive, 'a positive integer'),
    'ngf': (int, 64, _positive, 'a positive integer'),
    'ndf': (int, 64, _positive, 'a positive integer'),
    'loss': (str, 'vanilla', None, 'a name from gluoncv_gan.loss.objective_names()'),
    'n_critic': (int, 1, _positive, 'a positive integer: discriminator steps per generator step'),
    'weight_clip': (float, 0.0, _non_negative,
                    'a number >= 0: clip discriminator parameters into [-c, c] after each of its '
                    'steps (0: no clipping)'),
    'batch_size': (int, 64, _positive, 'a positive integer'),
    'epochs': (int, 20, _positive, 'a positive integer'),
    'iterations': ((int, type(None)), None, lambda v: v is None or v > 0,
                   'null or a positive integer: stop after this many iterations in all'),
    'optimizer': (str, 'adam', ('adam', 'rmsprop'), 'adam or rmsprop'),
    'lr': (float, 0.0002, _positive,
           "a positive finite number: the generator's learning rate (and the discriminator's "
           "unless lr_d is set)"),
    'lr_d': ((float, type(None)), None, lambda v: v is None or _positive(v),
             "null (same as lr) or a positive finite number: the discriminator's learning rate"),
    'lr_decay_epochs': (int, 0, _non_negative,
                        'a non-negative integer: decay both learning rates linearly to zero over '
                        'the last N epochs of the run (0: constant rates)'),
    'beta1': (float, 0.5, _probability, 'a number in [0, 1): Adam beta1 (unused by rmsprop)'),
    'beta2': (float, 0.999, _probability,
              'a number in [0, 1): decay of the mean squared gradient (Adam beta2, RMSprop '
              'gamma1)'),
    'ema_decay': (float, 0.0, _probability,
                  'a number in [0, 1): decay of a moving average of the generator (0: none)'),
    'seed': (int, 0, _non_negative, 'a non-negative integer'),
    'gpus': (str, '', None, "comma-separated GPU ids, '' for CPU"),
    'cpus': (int, 1, _positive, 'a positive integer: CPU contexts when gpus is empty (more than '
             '1 only to test multi-device training: they share the same cores)'),
    'kvstore': (str, 'device', KVSTORE_TYPES,
                '%s or %s' % (', '.join(KVSTORE_TYPES[:-1]), KVSTORE_TYPES[-1])),
    'horovod': (bool, False, None, 'true or false: data-parallel training with Horovod'),
    'num_workers': (int, 0, _non_negative, 'a non-negative integer (0: one per CPU)'),
    'hybridize': (bool, True, None, 'true or false'),
    'amp': (bool, False, None, 'true or false: bfloat16 convolutions through MXNet AMP on CPU '
            '(MKLDNN; the nets then run imperatively; not with gpus)'),
    'log_interval': (int, 10, _positive, 'a positive integer (iterations)'),
    'sample_interval': (int, 500, _non_negative, 'iterations between sample grids (0: per epoch only)'),
    'num_samples': (int, 64, _positive, 'a positive integer: images in the sample grid'),
    'checkpoint_interval': (int, 500, _non_negative,
                            'iterations between checkpoints (0: per epoch only)'),
    'keep_checkpoints': (int, 3, _positive, 'a positive integer: how many recent checkpoints to keep'),
    'eval_interval': (int, 0, _non_negative,
                      'epochs between evaluations (SWD, face rate, diversity) of the generator '
                      '(0: none)'),
    'eval_samples': (int, 2000, lambda v: v >= 10, 'an integer >= 10: generated images per '
                     'evaluation (and real images compared with)'),
    'tensorboard': (bool, True, None, 'true or false (used only when mxboard is installed)'),
}


def default_config():
    """The defaults of every key: the tutorial's recipe."""
    return {key: spec[1] for key, spec in SCHEMA.items()}


def _check_value(key, value):
    types, _, rule, allowed = SCHEMA[key]
    types = types if isinstance(types, tuple) else (types,)
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if ok and isinstance(rule, tuple):
        ok = value in rule
    elif ok and callable(rule):
        ok = rule(value)
    if not ok:
        raise ConfigError('config key %r has the value %r; allowed: %s' % (key, value, allowed))
    return value


def validate_config(config):
    """Check every key and value; return a complete config (defaults filled in).

    Raises
    ------
    ConfigError
        For an unknown key (with the nearest known key suggested) or a value the key does
        not allow.
    """
    if not isinstance(config, dict):
        raise ConfigError('a config must be a mapping of keys to values, got %s'
                          % type(config).__name__)
    resolved = default_config()
    for key, value in config.items():
        if key not in SCHEMA:
            near = difflib.get_close_matches(str(key), SCHEMA, n=1)
            hint = ' (did you mean %r?)' % near[0] if near else ''
            raise ConfigError('unknown config key %r%s; known keys: %s'
                              % (key, hint, ', '.join(sorted(SCHEMA))))
        resolved[key] = _check_value(key, value)
    from ..loss import objective_names
    if resolved['loss'] not in objective_names():
        raise ConfigError('config key %r has the value %r; allowed: %s'
                          % ('loss', resolved['loss'], ', '.join(objective_names())))
    from ..model_zoo import get_model_list
    if resolved['model'] not in get_model_list():
        raise ConfigError('config key %r has the value %r; allowed: %s'
                          % ('model', resolved['model'], ', '.join(get_model_list())))
    if resolved['dataset'] == 'folder' and not resolved['data_dir']:
        raise ConfigError("dataset 'folder' needs data_dir (--data-dir): the folder of images")
    if resolved['amp'] and resolved['gpus'].strip(','):
        raise ConfigError("amp means bfloat16 convolutions on CPU here (not GluonCV's fp16 on "
                          "GPU), and gpus is %r: drop --amp to train on GPUs, or train on CPU "
                          "with --gpus ''" % resolved['gpus'])
    return resolved


def read_config_file(path):
    """The keys a YAML config file sets (unchecked; :func:`validate_config` checks them)."""
    if not os.path.isfile(path):
        raise ConfigError('config file %s does not exist' % path)
    with open(path) as f:
        try:
            config = yaml.safe_load(f) or {}
        except yaml.YAMLError as err:
            raise ConfigError('config file %s is not valid YAML: %s' % (path, err)) from None
    if not isinstance(config, dict):
        raise ConfigError('config file %s must hold a mapping of keys to values' % path)
    return config


def load_config(path=None, overrides=None):
    """Read a YAML config (or only defaults), apply ``overrides`` (None values ignored), validate.

    Parameters
    ----------
    path : str or None
        YAML file of keys from :data:`SCHEMA`.
    overrides : dict or None
        Values that replace the file's (e.g. from command-line flags).
    """
    config = read_config_file(path) if path else {}
    config.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return validate_config(config)


def save_config(config, path):
    """Write a config as YAML, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            yaml.safe_dump(config, f, sort_keys=False)
    return path
