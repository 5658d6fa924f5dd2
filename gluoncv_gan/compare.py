"""Train several recipes on the same budget of real images, evaluate each, tabulate the results.

Example (the recipes of the model zoo on full LFW)::

    python -m gluoncv_gan.compare --recipes configs/dcgan_lfw.yaml configs/lsgan_lfw.yaml \\
        configs/wgan_lfw.yaml configs/sngan_lfw.yaml --images 263680 --out-dir runs/compare

Each recipe trains ``--images // batch_size`` iterations into ``<out-dir>/<recipe name>/``, then
its final generator (and moving average) is evaluated as ``gluoncv_gan.evaluate`` does. Results:
``<out-dir>/compare.json``, ``compare.md`` and ``compare.log``. Run the same command again to
continue. What samples/s counts and more: docs/recipes.md#comparing-the-recipes.
"""
import argparse
import json
import logging
import os
import shlex
import signal
import sys

import yaml

from .estimator import checkpoint as ckpt
from .metrics import diversity, face_detection_rate
from .metrics.inception import FIDUnavailable, check_available, reference_features
from .pipeline.build import build_dataset, contexts
from .pipeline.evaluation import GeneratorEvaluation, evaluate_images, split_real
from .pipeline.generator import load_generator
from .pipeline.sampling import generate_images
from .pipeline.training import Stopped, log_to_files, setup_logging, train
from .utils.command_line import check_output_path, command, prog, seed_argument
from .utils.config import EVAL_METRICS, ConfigError, load_config, read_config_file
from .utils.fileio import atomic_path
from .utils.runlock import RunLock

__all__ = ['recipe_config', 'train_recipe', 'evaluate_recipe', 'markdown_table', 'main']

logger = logging.getLogger('gluoncv_gan.compare')
TRAINED_FILE = 'compare_training.json'  # written when a recipe's training has finished
RESULT_FILE = 'compare_result.json'     # written when it has been evaluated as well


def recipe_name(path):
    """A recipe's name: its file name without the extension (configs/wgan_lfw.yaml: wgan_lfw)."""
    return os.path.splitext(os.path.basename(path))[0]


def images_per_iteration(config):
    """Real images of one iteration: ``batch_size`` per device times the devices."""
    return config['batch_size'] * len(contexts(config['gpus'], config['cpus']))


def recipe_config(path, images, dataset=None, data_dir=None, gpus=None, lr_decay_epochs=None):
    """The config of recipe ``path`` trained on ``images`` real images, without evaluations;
    ``lr_decay_epochs`` (if given) replaces the recipe's, e.g. for a budget shorter than its decay.

    Raises
    ------
    ConfigError
        If the recipe is invalid or its batch is larger than ``images``.
    """
    overrides = {'dataset': dataset, 'data_dir': data_dir, 'gpus': gpus, 'eval_interval': 0,
                 'lr_decay_epochs': lr_decay_epochs}
    config = load_config(path, overrides)
    iterations = images // images_per_iteration(config)
    if iterations < 1:
        raise ConfigError('--images %d is less than one batch of %s (%d images)'
                          % (images, path, images_per_iteration(config)))
    # every epoch has at least one batch, so this many epochs never stops training early
    return load_config(None, dict(config, iterations=iterations, epochs=iterations))


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def _write_json(path, value):
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            json.dump(value, f, indent=1)


def _check_same_config(run_dir, config):
    """Refuse to continue a run folder that was made with another config."""
    path = os.path.join(run_dir, 'config.yaml')
    if not os.path.isfile(path):
        return
    saved = read_config_file(path)
    if saved != yaml.safe_load(yaml.safe_dump(config)):
        changed = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
        raise ConfigError('%s was trained with another config (differs in: %s): choose another '
                          '--out-dir or remove that folder' % (run_dir, ', '.join(changed)))


def train_recipe(config, run_dir):
    """Train (or resume) one recipe into ``run_dir``; return its training record (a dict)."""
    checkpoint = None
    if ckpt.list_checkpoints(os.path.join(run_dir, 'checkpoints')):
        checkpoint = ckpt.find_checkpoint(run_dir)
    log_file = logging.FileHandler(os.path.join(run_dir, 'train.log'))
    log_file.setFormatter(logging.Formatter('%(asctime)s %(message)s', '%Y-%m-%d %H:%M:%S'))
    root = logging.getLogger()
    root.addHandler(log_file)
    try:
        with RunLock(run_dir, '--out-dir'):  # one run per folder, as in gluoncv_gan.train
            estimator = train(config, run_dir, checkpoint=checkpoint,
                              logger=logging.getLogger('gluoncv_gan.train'), progress_bar=False)
    finally:
        root.removeHandler(log_file)
        log_file.close()
    seconds, timed = estimator.fit_seconds, estimator.fit_iterations
    speed = round(timed * images_per_iteration(config) / seconds, 2) if seconds > 0 else None
    return {'iterations': estimator.iteration,
            'images_seen': estimator.iteration * images_per_iteration(config),
            'resumed_from': checkpoint, 'timed_iterations': timed,
            'train_seconds': round(seconds, 3), 'samples_per_second': speed}


class RealReference:
    """Real comparison images per (dataset, folder, size), with their own face rate and diversity,
    loaded and measured once for all recipes that share them."""

    def __init__(self, num_samples, seed, inception=False):
        self.num_samples, self.seed, self.inception = num_samples, seed, inception
        self._cache = {}

    def get(self, config):
        key = (config['dataset'], config['data_dir'], config['image_size'])
        if key not in self._cache:
            images = build_dataset(config).images
            reference, _ = split_real(images, self.num_samples, self.seed)
            stats = {'dataset': config['dataset'], 'image_size': config['image_size'],
                     'num_images': int(len(reference)),
                     'face_rate': face_detection_rate(reference),
                     'diversity': diversity(reference, seed=self.seed)}
            logger.info('Real reference: %d images of %s at %dx%d, face rate %.3f, diversity '
                        '%.4f', stats['num_images'], key[0], key[2], key[2], stats['face_rate'],
                        stats['diversity'])
            features = reference_features(images)[0] if self.inception else None
            self._cache[key] = (reference, stats, features)
        return self._cache[key]


def evaluate_recipe(config, run_dir, reference, num_samples, seed=0, ctx=None,
                    inception_metrics=(), real_features=None):
    """Metrics of a run's final generator and of its moving average (if any); a list of dicts."""
    rows = []
    for ema in ([False, True] if config['ema_decay'] else [False]):
        net = load_generator(config['model'], params=run_dir, ema=ema, ctx=ctx)
        fake = generate_images(net, num_samples, seed=seed, ctx=ctx)
        result = evaluate_images(fake, reference, None, seed=seed, face_rate_real=False,
                                 diversity_real=False,
                                 metrics=('swd', 'face', 'diversity', 'sharpness')
                                 + tuple(inception_metrics), real_features=real_features)
        row = {key: result[key] for key in GeneratorEvaluation.KEYS if key in result}
        rows.append(dict(row, generator='ema' if ema else 'final', num_samples=int(len(fake))))
    return rows


def objective_label(config):
    """The objective and the settings that go with it, e.g. 'wgan (n_critic 5, clip 0.01)'."""
    extras = []
    if config['n_critic'] > 1:
        extras.append('n_critic %d' % config['n_critic'])
    if config['weight_clip']:
        extras.append('clip %g' % config['weight_clip'])
    if config['lr_d'] and config['lr_d'] != config['lr']:
        extras.append('lr %g/%g' % (config['lr'], config['lr_d']))
    if config['ema_decay']:
        extras.append('EMA %g' % config['ema_decay'])
    return config['loss'] + (' (%s)' % ', '.join(extras) if extras else '')


# columns shown when some row has them: (key, heading, cell)
_OPTIONAL_COLUMNS = (('sharpness', 'sharpness', lambda r: '%.3f' % r['sharpness']),
                     ('fid', 'FID', lambda r: '%.2f' % r['fid']),
                     ('kid', 'KID x1e3', lambda r: '%.2f' % (1e3 * r['kid'])),
                     ('precision', 'precision / recall',
                      lambda r: '%.3f / %.3f' % (r['precision'], r['recall'])))


def markdown_table(results, real=None, command=None):
    """The comparison as markdown: one row per evaluated generator."""
    rows = [row for res in results for row in res['evaluations']]
    extra = [c for c in _OPTIONAL_COLUMNS if any(c[0] in row for row in rows)]
    lines = ['| recipe | model | objective | images seen | iterations | SWD x1e3 | face rate | '
             'diversity | %ssamples/s |' % ''.join('%s | ' % c[1] for c in extra),
             '|' + '---|' * (9 + len(extra))]
    for res in results:
        speed = res['training']['samples_per_second']
        for row in res['evaluations']:
            name = res['name'] + (' (EMA)' if row['generator'] == 'ema' else '')
            lines.append('| %s | %s | %s | %d | %d | %.2f | %.3f | %.4f | %s%s |' % (
                name, res['config']['model'], objective_label(res['config']),
                res['training']['images_seen'], res['training']['iterations'], row['swd'],
                row['face_rate'], row['diversity'],
                ''.join('%s | ' % (cell(row) if key in row else '') for key, _, cell in extra),
                '%.1f' % speed if speed else 'n/a'))
    notes = ['', 'SWD: sliced Wasserstein distance x1e3 (lower is better); face rate: fraction '
             'of images with a face found by OpenCV\'s Haar cascade; diversity: mean distance '
             'between random image pairs; sharpness: Laplacian energy of the samples over that '
             'of real images (1 is as sharp as real); FID, KID and precision/recall (k=3) '
             'against all real images of the dataset, with the reference Inception network. '
             'samples/s: real images trained on per second of the training loop\'s wall time '
             '(evaluation excluded).']
    for stats in (real or []):
        notes.append('Real images (%d of %s at %dx%d): face rate %.3f, diversity %.4f.' % (
            stats['num_images'], stats['dataset'], stats['image_size'], stats['image_size'],
            stats['face_rate'], stats['diversity']))
    if command:
        notes += ['', 'Command: `%s`' % command]
    return '\n'.join(lines + notes) + '\n'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n', 2)[2])
    parser.prog = prog('gluoncv_gan.compare')  # the command's real name in usage lines
    parser.add_argument('--recipes', nargs='+', required=True, help='YAML recipes to compare')
    parser.add_argument('--images', type=int, required=True,
                        help='real images each recipe trains on (iterations: images // batch size)')
    parser.add_argument('--out-dir', required=True, help='folder of the runs and the results')
    parser.add_argument('--eval-samples', type=int, default=2000,
                        help='generated images per evaluation, and real images compared with')
    parser.add_argument('--dataset', default=None, choices=['lfw', 'lfw_sample', 'folder'],
                        help="train every recipe on this dataset (default: each recipe's own)")
    parser.add_argument('--data-dir', default=None, help='dataset folder (with --dataset)')
    parser.add_argument('--gpus', default=None, help="GPU ids like '0'; '' for CPU")
    parser.add_argument('--seed', type=seed_argument, default=0, help='seed of the evaluation')
    parser.add_argument('--lr-decay-epochs', type=int, default=None, metavar='N',
                        help="every recipe's rates decay over the budget's last N epochs "
                             "(default: each recipe's own; 0: no decay)")
    parser.add_argument('--metrics', default='swd',
                        help='comma-separated subset of %s: swd is SWD, face rate, diversity '
                             'and sharpness; fid, kid and pr need the [fid] extra'
                             % ','.join(EVAL_METRICS))
    args = parser.parse_args(argv)
    args.metrics = [m.strip() for m in args.metrics.split(',') if m.strip()]
    unknown = [m for m in args.metrics if m not in EVAL_METRICS]
    if unknown or not args.metrics:
        parser.error('--metrics: choose from %s, got %s' % (', '.join(EVAL_METRICS),
                                                            ', '.join(unknown) or 'nothing'))
    names = [recipe_name(r) for r in args.recipes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        parser.error('recipes must have distinct file names (run folders are named after '
                     'them): %s' % ', '.join(duplicates))
    if args.eval_samples < 10:
        parser.error('--eval-samples must be at least 10')
    return args


def _write_outputs(out_dir, args, results, real, command):
    _write_json(os.path.join(out_dir, 'compare.json'),
                {'command': command, 'images': args.images, 'eval_samples': args.eval_samples,
                 'seed': args.seed, 'real': real, 'results': results})
    with atomic_path(os.path.join(out_dir, 'compare.md')) as tmp:
        with open(tmp, 'w') as f:
            f.write(markdown_table(results, real, command))


def run_recipe(index, total, path, args, reference_source):
    """Train and evaluate one recipe unless already done; return its result (a dict)."""
    name = recipe_name(path)
    run_dir = os.path.abspath(os.path.join(args.out_dir, name))
    prefix = '[%d/%d] %s:' % (index, total, name)
    result_path = os.path.join(run_dir, RESULT_FILE)
    config = recipe_config(path, args.images, args.dataset, args.data_dir, args.gpus,
                           args.lr_decay_epochs)
    _check_same_config(run_dir, config)
    if os.path.isfile(result_path):
        logger.info('%s finished earlier (%s), skipped', prefix, result_path)
        return _read_json(result_path)
    os.makedirs(run_dir, exist_ok=True)
    trained_path = os.path.join(run_dir, TRAINED_FILE)
    if os.path.isfile(trained_path):
        training = _read_json(trained_path)
        logger.info('%s trained earlier, evaluating', prefix)
    else:
        logger.info('%s training %s with %s for %d iterations of %d images (%d images) into %s',
                    prefix, config['model'], objective_label(config), config['iterations'],
                    images_per_iteration(config),
                    config['iterations'] * images_per_iteration(config), run_dir)
        training = train_recipe(config, run_dir)
        _write_json(trained_path, training)
        logger.info('%s trained in %.1f s (%s samples/s)', prefix, training['train_seconds'],
                    training['samples_per_second'])
    reference, real, features = reference_source.get(config)
    ctx = contexts(config['gpus'])[0]
    inception_metrics = [m for m in args.metrics if m != 'swd']
    evaluations = evaluate_recipe(config, run_dir, reference, args.eval_samples, args.seed, ctx,
                                  inception_metrics, features)
    for row in evaluations:
        logger.info('%s %s generator: SWD x1e3 %.2f, face rate %.3f, diversity %.4f, '
                    'sharpness %.3f%s', prefix, row['generator'], row['swd'], row['face_rate'],
                    row['diversity'], row['sharpness'],
                    ', FID %.2f' % row['fid'] if 'fid' in row else '')
    result = {'name': name, 'recipe': os.path.abspath(path), 'run_dir': run_dir,
              'config': config, 'training': training, 'evaluations': evaluations, 'real': real}
    _write_json(result_path, result)
    return result


@command()
def main(argv=None):
    args = parse_args(argv)
    check_output_path(args.out_dir, '--out-dir', folder=True)
    os.makedirs(args.out_dir, exist_ok=True)
    setup_logging(os.path.join(args.out_dir, 'compare.log'))
    logger.info(args)
    command = 'python -m gluoncv_gan.compare ' + ' '.join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    inception = any(m != 'swd' for m in args.metrics)
    if inception:
        try:  # before any training
            check_available()
        except FIDUnavailable as err:
            sys.exit('error: %s' % err)
    reference_source = RealReference(args.eval_samples, args.seed, inception)
    results = []
    try:
        for index, path in enumerate(args.recipes, 1):
            results.append(run_recipe(index, len(args.recipes), path, args, reference_source))
            real = []
            for res in results:
                if res['real'] not in real:
                    real.append(res['real'])
            _write_outputs(args.out_dir, args, results, real, command)
    except (ConfigError, FileNotFoundError, FIDUnavailable) as err:
        log_to_files(logger, 'error: %s' % err)
        sys.exit('error: %s' % err)
    except (Stopped, KeyboardInterrupt) as stop:
        # the recipe's training saved a checkpoint (Stopped), or nothing was half-written (every
        # file is written atomically): the same command resumes where this one stopped
        signum = getattr(stop, 'signum', signal.SIGINT)
        logger.info('stopped by %s; resume with: %s', signal.Signals(signum).name, command)
        sys.exit(128 + signum)
    logger.info('Wrote %s and %s', os.path.join(args.out_dir, 'compare.json'),
                os.path.join(args.out_dir, 'compare.md'))
    return results


if __name__ == '__main__':
    main()
