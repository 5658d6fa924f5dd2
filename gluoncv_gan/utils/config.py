"""Training configuration: a YAML file checked against a schema, then command-line overrides.

Every key has a type, a default, a rule, a help text and a command-line flag (or is set in
files only); an unknown key, a wrong type or an impossible value is a :class:`ConfigError` that
names the key and what is allowed. ``gluoncv_gan.train`` builds its flags from the schema.
"""
import difflib
import math
import os
from dataclasses import dataclass

import yaml

from .command_line import SEED_ALLOWED, UserError, valid_seed
from .fileio import atomic_path
from .name_registry import AUGMENTATIONS, KVSTORES, MODELS, OBJECTIVES, Registry

__all__ = ['ConfigError', 'ARCH_KEYS', 'Key', 'SCHEMA',
           'default_config', 'load_config', 'validate_config', 'save_config', 'read_config_file',
           'parse_config_text', 'flag_of', 'add_config_flags', 'overrides_from_args', 'arch_kwargs']


# what training's evaluations measure: swd is the project's set (SWD, face rate, diversity,
# sharpness); fid, kid and pr need the [fid] extra
EVAL_METRICS = ('swd', 'fid', 'kid', 'pr')


class ConfigError(UserError, ValueError):
    """A configuration key or value is wrong."""


# keys that shape the networks: passed to the model's constructor (see arch_kwargs)
ARCH_KEYS = ('nz', 'ngf', 'ndf', 'skip_excitation', 'discriminator')
# of those, the ones only some models take: a model lists them in its constructor's `options`
_MODEL_OPTIONS = ('skip_excitation', 'discriminator')


def _positive(value):
    return math.isfinite(value) and value > 0


def _non_negative(value):
    return math.isfinite(value) and value >= 0


def _power_of_two_16(value):
    return value >= 16 and value & (value - 1) == 0


def _probability(value):
    return 0 <= value < 1


def _positive_or_none(value):
    return value is None or _positive(value)


def _augment_policy(value):
    return all(name.strip() in AUGMENTATIONS for name in value.split(',') if name.strip())


def _eval_metrics(value):
    names = [name.strip() for name in value.split(',') if name.strip()]
    return bool(names) and all(name in EVAL_METRICS for name in names)


@dataclass(frozen=True)
class Key:
    """One config key.

    Parameters
    ----------
    types : type or tuple of types
        Types a value may have (an int is accepted where float is).
    default : object
        Value when neither the file nor a flag sets it.
    rule : tuple, callable, Registry or None
        Allowed values: a tuple of them, a predicate, or the names of a registry.
    allowed : str or callable
        What is allowed, in words, for error messages (a registry's names when empty); a
        callable returns it when asked (it may name what a registry holds by then).
    help : str
        What the key does, for ``--help``.
    file_only : bool
        True: set in YAML files only, no flag.
    alias : str or None
        A short flag besides the long one, e.g. '-j'.
    metavar : str or None
        Placeholder of the value in ``--help``.
    """
    types: object
    default: object
    rule: object = None
    allowed: object = ''
    help: str = ''
    file_only: bool = False
    alias: str = None
    metavar: str = None


_POSITIVE = 'a positive integer'
_NON_NEGATIVE = 'a non-negative integer'
_BOOL = 'true or false'
_NUMBER_IN_0_1 = 'a number in [0, 1)'

SCHEMA = {
    'model': Key(str, 'dcgan_lfw', MODELS, help='model-zoo name'),
    'dataset': Key(str, 'lfw', ('lfw', 'lfw_sample', 'folder'), 'lfw, lfw_sample or folder',
                   'lfw (prepared with gluoncv_gan.data.prepare_lfw), lfw_sample (bundled), or '
                   'folder (any folder of face images, with --data-dir)'),
    'data_dir': Key((str, type(None)), None, None, 'a folder',
                    'dataset folder (default: $MXNET_HOME/datasets/lfw for lfw; required for '
                    'folder)'),
    'flip': Key(bool, False, None, _BOOL,
                'mirror a random half of the training images left-right each epoch'),
    'augment': Key(str, '', _augment_policy,
                   lambda: "'' or a comma-separated subset of " + ','.join(AUGMENTATIONS.names()),
                   'augment every image the discriminator sees, real and generated '
                   '(DiffAugment), e.g. color,translation,cutout: for a few hundred images'),
    'image_size': Key(int, 64, _power_of_two_16, 'a power of two >= 16', 'image height and width'),
    'nz': Key(int, 100, _positive, _POSITIVE, 'latent size'),
    'ngf': Key(int, 64, _positive, _POSITIVE, 'generator width'),
    'ndf': Key(int, 64, _positive, _POSITIVE, 'discriminator width'),
    'skip_excitation': Key((bool, type(None)), None, None, 'null or true or false',
                           "skip-layer excitation in the generator (FastGAN), for models that "
                           "offer it (resgan_lfw); null: the model's default",
                           file_only=True),
    'discriminator': Key((str, type(None)), None, (None, 'dcgan', 'residual'),
                         'null or dcgan or residual',
                         "the discriminator, for models that offer a choice (resgan_lfw): dcgan "
                         "(the tutorial's, BatchNorm) or residual (spectral norm); null: the "
                         "model's default", file_only=True),
    'loss': Key(str, 'vanilla', OBJECTIVES, help='GAN objective (docs/recipes.md)'),
    'n_critic': Key(int, 1, _positive, _POSITIVE, 'discriminator steps per generator step'),
    'weight_clip': Key(float, 0.0, _non_negative, 'a number >= 0',
                       'clip discriminator parameters into [-c, c] after each of its steps '
                       '(WGAN; 0: no clipping)'),
    'batch_size': Key(int, 64, _positive, _POSITIVE,
                      'images per device and iteration (as in GluonCV: the global batch is this '
                      'x devices x workers, printed at the start)'),
    'epochs': Key(int, 20, _positive, _POSITIVE, 'epochs in all'),
    'iterations': Key((int, type(None)), None, _positive_or_none, 'null or a positive integer',
                      'stop after this many iterations in all (instead of whole epochs)'),
    'optimizer': Key(str, 'adam', ('adam', 'rmsprop'), 'adam or rmsprop', 'optimiser of both nets'),
    'lr': Key(float, 0.0002, _positive, 'a positive finite number',
              "generator's learning rate (and the discriminator's without --lr-d)"),
    'lr_d': Key((float, type(None)), None, _positive_or_none,
                'null (same as lr) or a positive finite number',
                "discriminator's learning rate (default: --lr; TTUR when it differs)"),
    'lr_decay_epochs': Key(int, 0, _non_negative, _NON_NEGATIVE,
                           'decay both learning rates linearly to zero over the last N epochs of '
                           'the run (0: constant rates)', metavar='N'),
    'beta1': Key(float, 0.5, _probability, _NUMBER_IN_0_1, 'Adam beta1 (unused by rmsprop)'),
    'beta2': Key(float, 0.999, _probability, _NUMBER_IN_0_1,
                 'Adam beta2 (RMSprop: decay of the mean squared gradient, gamma1)'),
    'ema_decay': Key(float, 0.0, _probability, _NUMBER_IN_0_1,
                     'keep a moving average of the generator with this decay (0: none)'),
    'seed': Key(int, 0, valid_seed, SEED_ALLOWED, 'random seed'),
    'gpus': Key(str, '', None, "comma-separated GPU ids", "GPU ids like '0,1'; '' for CPU"),
    'cpus': Key(int, 1, _positive, _POSITIVE,
                'CPU contexts when --gpus is empty (more than 1 only to test multi-device '
                'training: they share the same cores)'),
    'kvstore': Key(str, 'device', KVSTORES,
                   help='gradient reduction: device or local (one process), dist_sync, '
                        'dist_device_sync or dist_async (parameter servers: start with python -m '
                        'gluoncv_gan.launch)'),
    'horovod': Key(bool, False, None, _BOOL,
                   'data-parallel training with Horovod (start with horovodrun)'),
    'num_workers': Key(int, 0, _non_negative, _NON_NEGATIVE,
                       'threads that decode images into the cache (0: one per CPU)', alias='-j'),
    'hybridize': Key(bool, True, None, _BOOL,
                      'run the nets as static graphs (--no-hybridize: imperatively)'),
    'amp': Key(bool, False, None, _BOOL,
               'bfloat16 convolutions and transposed convolutions on CPU (opt-in; CPUs with '
               'avx512_bf16 or AMX; the nets then run imperatively). Unlike --amp in GluonCV\'s GPU scripts this is '
               'not fp16, and --gpus refuses it'),
    'log_interval': Key(int, 10, _positive, _POSITIVE, 'iterations between logs'),
    'sample_interval': Key(int, 500, _non_negative, _NON_NEGATIVE,
                           'iterations between sample grids (0: per epoch only)'),
    'num_samples': Key(int, 64, _positive, _POSITIVE, 'images in the sample grid',
                       file_only=True),
    'checkpoint_interval': Key(int, 500, _non_negative, _NON_NEGATIVE,
                               'iterations between checkpoints (0: per epoch only)'),
    'keep_checkpoints': Key(int, 3, _positive, _POSITIVE,
                            'newest checkpoints to keep (the best one is kept as well)'),
    'eval_interval': Key(int, 0, _non_negative, _NON_NEGATIVE,
                         'epochs between evaluations (SWD, face rate, diversity) of the '
                         'generator (0: none)'),
    'eval_samples': Key(int, 2000, lambda v: v >= 10, 'an integer >= 10',
                        'generated images per evaluation (and real images compared with)'),
    'eval_metrics': Key(str, 'swd', _eval_metrics,
                        'a comma-separated subset of %s' % ','.join(EVAL_METRICS),
                        'what evaluations measure: swd (SWD, face rate, diversity, sharpness), '
                        'fid, kid, pr (the [fid] extra); the best checkpoint is chosen by FID '
                        'when it is measured, else by SWD'),
    'tensorboard': Key(bool, True, None, _BOOL,
                       'write TensorBoard logs (only when mxboard is installed)', file_only=True),
    'compare_with': Key((str, type(None)), None, lambda v: v is None or v in MODELS.names(),
                        'null or a model-zoo name',
                        "at the end, write compare.png: the run's samples beside this "
                        "published model's, same latents", metavar='NAME'),
}


def default_config():
    """The defaults of every key: the tutorial's recipe."""
    return {key: spec.default for key, spec in SCHEMA.items()}


def _allowed(spec):
    if isinstance(spec.rule, Registry):
        return ', '.join(spec.rule.names())
    return spec.allowed() if callable(spec.allowed) else spec.allowed


def _check_value(key, value):
    spec = SCHEMA[key]
    rule = spec.rule
    types = spec.types if isinstance(spec.types, tuple) else (spec.types,)
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:
            pass  # refused below, as not a float
    elif float in types and isinstance(value, str):
        # YAML 1.1 reads 2e-4 (no dot in the mantissa) as a string: take it as the number
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if ok and isinstance(rule, Registry):
        ok = value in rule.names()
    elif ok and isinstance(rule, tuple):
        ok = value in rule
    elif ok and callable(rule):
        ok = rule(value)
    if not ok:
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:60] + '...'
        raise ConfigError('config key %r has the value %s; allowed: %s'
                          % (key, shown, _allowed(spec)))
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
    for key in _MODEL_OPTIONS:
        taken = getattr(MODELS.get(resolved['model']), 'options', ())
        if resolved[key] is not None and key not in taken:
            raise ConfigError('config key %r applies to the models that offer it (%s), not to '
                              '%s: remove it or set it to null'
                              % (key, ', '.join(name for name, c in MODELS.items()
                                                if key in getattr(c, 'options', ())) or 'none',
                                 resolved['model']))
    if resolved['lr_d'] is None:  # resolved here once: every reader sees the rate in use
        resolved['lr_d'] = resolved['lr']
    if resolved['dataset'] == 'folder' and not resolved['data_dir']:
        raise ConfigError("dataset 'folder' needs data_dir (--data-dir): the folder of images")
    if resolved['amp'] and resolved['gpus'].strip(','):
        raise ConfigError("amp means bfloat16 convolutions on CPU here (not GluonCV's fp16 on "
                          "GPU), and gpus is %r: drop --amp to train on GPUs, or train on CPU "
                          "with --gpus ''" % resolved['gpus'])
    return resolved


def arch_kwargs(config):
    """The keyword arguments of ``get_model`` that a config's network keys give.

    ``config`` may be partial (e.g. the config saved beside old weights): keys it lacks, and
    model options left null, are not passed, so the model's defaults apply.
    """
    return {key: config[key] for key in ARCH_KEYS if config.get(key) is not None}


class _DuplicateKey(yaml.YAMLError):
    """A key given twice in one mapping."""


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (it keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                line = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: construct_mapping names it
                break
            if line != key_node.start_mark.line + 1:
                raise _DuplicateKey('gives the key %r twice (lines %d and %d): keep one'
                                    % (key, line, key_node.start_mark.line + 1))
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(err):
    """The parser's problem and where, in one line: 'expected <block end>, but found ... (line
    5, column 6)'."""
    if isinstance(err, yaml.MarkedYAMLError):
        what = '; '.join(str(part) for part in (err.context, err.problem) if part)
        mark = err.problem_mark or err.context_mark
        if mark is not None:
            what += ' (line %d, column %d)' % (mark.line + 1, mark.column + 1)
        return what
    return ' '.join(str(err).split())


def parse_config_text(data, name):
    """The mapping a config file's bytes hold (unchecked).

    Parameters
    ----------
    data : bytes
        The file's content: UTF-8 text of a YAML mapping (empty: no keys).
    name : str
        The file, for messages.

    Raises
    ------
    ConfigError
        When ``data`` is not UTF-8 text, not valid YAML (the parser's problem and location),
        gives a key twice, or does not hold a mapping.
    """
    if b'\0' in data:
        raise ConfigError('config file %s is not a text file (it holds NUL bytes): give a YAML '
                          'file such as configs/dcgan_lfw.yaml' % name)
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b'\n') + 1
        raise ConfigError('config file %s is not UTF-8 text (byte 0x%02x on line %d): save it as '
                          'UTF-8' % (name, data[err.start], line)) from None
    try:
        config = yaml.load(text, Loader=_StrictLoader)
    except _DuplicateKey as err:
        raise ConfigError('config file %s %s' % (name, err)) from None
    except yaml.YAMLError as err:
        raise ConfigError('config file %s is invalid YAML: %s; fix that line' % (
            name, _yaml_problem(err))) from None
    except RecursionError:
        raise ConfigError('config file %s is invalid YAML: nested too deeply' % name) from None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ConfigError('config file %s must hold a mapping of keys to values (key: value '
                          'lines), not a %s' % (name, _yaml_kind(config)))
    return config


def _yaml_kind(value):
    kinds = {list: 'list', str: 'string', int: 'number', float: 'number', bool: 'boolean'}
    return kinds.get(type(value), type(value).__name__)


def read_config_file(path):
    """The keys a YAML config file sets (unchecked; :func:`validate_config` checks them).

    Raises
    ------
    ConfigError
        When the file is missing or unreadable, or as :func:`parse_config_text` says.
    """
    if not os.path.isfile(path):
        raise ConfigError('config file %s does not exist' % path)
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as err:
        raise ConfigError('config file %s cannot be read (%s): check its permissions'
                          % (path, err.strerror)) from None
    return parse_config_text(data, path)


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


def flag_of(key):
    """The command-line flag of ``key``, e.g. '--batch-size'; None for a file-only key.

    A bool key's flag switches it away from its default: '--amp' sets amp (default false),
    '--no-hybridize' clears hybridize (default true).
    """
    spec = SCHEMA[key]
    if spec.file_only:
        return None
    name = key.replace('_', '-')
    return '--no-' + name if spec.types is bool and spec.default else '--' + name


def _flag_help(spec):
    words = [spec.help]
    if isinstance(spec.rule, Registry):
        words.append('one of: ' + _allowed(spec))
    if spec.types is not bool and spec.default not in (None, ''):
        words.append('default: %s' % (spec.default,))
    return '; '.join(words).replace('%', '%%')  # argparse formats help with %


def add_config_flags(parser):
    """Add a flag for every key of :data:`SCHEMA` that is not file-only.

    Each flag's value is stored under the key's name and is None when the flag is left out, so
    that only the flags given override the YAML file (see :func:`overrides_from_args`).
    """
    group = parser.add_argument_group(
        'config keys', 'each flag overrides its key in --config (or in the resumed run); the '
        'default applies when neither sets the key')
    for key, spec in SCHEMA.items():
        flag = flag_of(key)
        if flag is None:
            continue
        names = [spec.alias, flag] if spec.alias else [flag]
        if spec.types is bool:
            group.add_argument(*names, dest=key, action='store_const', const=not spec.default,
                               default=None, help=_flag_help(spec))
            continue
        types = spec.types if isinstance(spec.types, tuple) else (spec.types,)
        group.add_argument(*names, dest=key, default=None, metavar=spec.metavar,
                           type=next(t for t in types if t is not type(None)),
                           choices=spec.rule.names() if getattr(spec.rule, 'closed', False)
                           else spec.rule if isinstance(spec.rule, tuple) else None,
                           help=_flag_help(spec))
    return parser


def overrides_from_args(args):
    """Config values given by the flags of :func:`add_config_flags` (None: flag left out)."""
    return {key: getattr(args, key) for key in SCHEMA if flag_of(key)}
