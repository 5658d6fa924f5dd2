"""The benchmark itself (the parent process): start the workers, time them in turns, gather
the results."""
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time
from types import SimpleNamespace

from . import reference as ref
from ..pipeline.build import build_dataset
from ..utils.config import load_config
from ..utils.cores import usable_cores
from ..utils.onednn import probe_kernels
from .flops import flops_per_image
from .workers import (AMP_WORKER, BOOTSTRAP, WORKERS, WorkerProcess, check_threads,
                      resolve_data)

__all__ = ['run_benchmark']


def run_benchmark(args, progress=None):
    """Run the benchmark described by ``args`` (see :func:`parse_args`); return the results.

    The steps: choose the data and plan the runs (:func:`plan_runs`), write the workers'
    command lines (:func:`worker_specs`), start the workers and time them in turns
    (:func:`measure`), then turn the timings into rates and ratios (:func:`summarise`).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed flags.
    progress : callable or None
        Called with a line of text as the benchmark advances.

    Returns
    -------
    dict
        Everything the JSON file holds.
    """
    progress = progress or (lambda text: None)
    began = time.time()
    plan = plan_runs(args, progress)
    workdir = tempfile.mkdtemp(prefix='gluoncv-gan-benchmark-')
    try:
        specs = worker_specs(args, plan, workdir)
        measured = measure(args, plan, specs, workdir, progress)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = summarise(args, plan, measured)
    result['wall_seconds'] = time.time() - began
    if args.amp:
        progress('oneDNN kernels of a bfloat16 step (DNNL_VERBOSE, in a child process)')
        result['onednn'] = probe_kernels(bfloat16=True, env=specs['A'][1])
    return result


def plan_runs(args, progress):
    """The data (its cache built, untimed), the thread count and the number of iterations."""
    dataset_name, data_dir, note = resolve_data(args)
    config = load_config(None, {'dataset': dataset_name, 'data_dir': data_dir,
                                'batch_size': args.batch_size})
    progress('Data: %s (building its cache if needed, untimed)' % dataset_name)
    dataset = build_dataset(config)
    if len(dataset) < args.batch_size:
        raise ValueError('%s has %d images, fewer than one batch of %d'
                         % (dataset_name, len(dataset), args.batch_size))
    planned = args.warmup + args.repeats * args.iters
    return SimpleNamespace(
        dataset_name=dataset_name, data_dir=data_dir, notes=[note] if note else [],
        config=config, dataset=dataset, planned=planned,
        threads=args.threads or int(os.environ.get('OMP_NUM_THREADS') or usable_cores()),
        reference_images=min(len(dataset) // args.batch_size, planned) * args.batch_size,
        timed=WORKERS + ((AMP_WORKER,) if args.amp else ()))


def worker_specs(args, plan, workdir):
    """{worker key: (command, environment, working folder)}."""
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    tuned_env = dict(os.environ, OMP_NUM_THREADS=str(plan.threads))
    default_env = {k: v for k, v in os.environ.items() if k not in ref.THREAD_VARIABLES}
    project_cmd = [sys.executable, '-m', 'gluoncv_gan.benchmark', '--worker', 'project',
                   '--dataset', plan.dataset_name, '--batch-size', str(args.batch_size),
                   '--seed', str(args.seed), '--iterations', str(plan.planned),
                   '--sample-batch-size', str(args.sample_batch_size),
                   '--gemm-size', str(args.gemm_size)]
    if plan.data_dir:
        project_cmd += ['--data-dir', os.path.abspath(os.path.expanduser(plan.data_dir))]
    reference_cmd = [sys.executable, '-c', BOOTSTRAP, os.path.abspath(ref.__file__), '--worker',
                     '--cache', plan.dataset.cache_path,
                     '--num-images', str(plan.reference_images),
                     '--batch-size', str(args.batch_size), '--seed', str(args.seed)]
    return {'A': (project_cmd, tuned_env, package_parent),
            'B': (reference_cmd, default_env, workdir),
            'C': (reference_cmd, tuned_env, workdir),
            'D': (project_cmd + ['--worker-amp'], tuned_env, package_parent)}


def measure(args, plan, specs, workdir, progress):
    """Start the workers, warm them up, time them in turns (A B C A B C ...), then ask worker
    A (and D) for the other figures; every worker is gone on return."""
    workers, ready, runs, final = {}, {}, {k: [] for k, _, _ in plan.timed}, {}
    extras = {}
    try:
        for key, _, label in plan.timed:
            progress('Starting worker %s (%s)' % (key, label))
            command, env, cwd = specs[key]
            workers[key] = WorkerProcess(key, command, env, cwd,
                                         os.path.join(workdir, key + '.log'))
            ready[key] = workers[key].read()
        check_threads(ready, plan.threads)
        if args.warmup:
            for key, _, _ in plan.timed:
                progress('Warm-up of %s: %d iterations' % (key, args.warmup))
                ready[key]['warmup'] = workers[key].ask('run %d' % args.warmup)
        for repeat in range(args.repeats):
            for key, _, _ in plan.timed:
                runs[key].append(workers[key].ask('run %d' % args.iters))
            progress('Repeat %d/%d: %s' % (repeat + 1, args.repeats, ', '.join(
                '%s %.2f s' % (k, runs[k][-1]['elapsed']) for k, _, _ in plan.timed)))
        progress('Sampling, cached loader and JPEG decoding (in worker A)')
        extras['sample'] = workers['A'].ask('sample %d' % args.sample_batches)
        extras['loader'] = workers['A'].ask('loader %d' % args.loader_batches)
        extras['jpeg'] = workers['A'].ask('jpeg %d' % args.jpeg_images)
        progress('fp32 GEMM %dx%d (in worker A)' % (args.gemm_size, args.gemm_size))
        extras['gemm'] = workers['A'].ask('gemm 5')
        if args.amp:
            progress('bfloat16 GEMM %dx%d (in worker D)' % (args.gemm_size, args.gemm_size))
            extras['gemm_bf16'] = workers['D'].ask('gemm_bf16 5')
        for key, _, _ in plan.timed:
            final[key] = workers[key].close()
    finally:
        for worker in workers.values():
            worker.kill()
    return SimpleNamespace(ready=ready, runs=runs, extras=extras, final=final)


def summarise(args, plan, measured):
    """The results: rates and ratios (medians of the timed runs), FLOP rates, threads, notes."""
    ready, runs, extras, timed = measured.ready, measured.runs, measured.extras, plan.timed
    config = plan.config
    flops = flops_per_image(config['nz'], config['ngf'], config['ndf'], config['image_size'],
                            input_grad_only=ready['A']['input_grad_only'])
    images = args.batch_size * args.iters
    rates = {key: images / statistics.median(r['elapsed'] for r in runs[key])
             for key, _, _ in timed}
    per_image = {'A': flops['project'], 'B': flops['reference'], 'C': flops['reference'],
                 'D': flops['project']}
    gflops = {name: rates[key] * per_image[key] / 1e9 for key, name, _ in timed}
    result = {
        'train_samples_per_s': rates['A'],
        'reference_samples_per_s': rates['B'],
        'reference_tuned_samples_per_s': rates['C'],
        'ratio': rates['A'] / rates['B'],
        'ratio_tuned': rates['A'] / rates['C'],
        'sample_images_per_s': extras['sample']['images'] / extras['sample']['elapsed'],
        'loader_images_per_s': extras['loader']['images'] / extras['loader']['elapsed'],
        'loader_jpeg_images_per_s': extras['jpeg']['images'] / extras['jpeg']['elapsed'],
        'peak_rss_mb': {name: runs[key][-1]['maxrss_kb'] / 1024.0 for key, name, _ in timed},
        'threads': _thread_results(measured, timed),
        'mxnet_features': sorted(ready['A']['threads']['mxnet_features']),
        'flops_per_image': flops,
        'gflops': gflops,
        'gemm_gflops': extras['gemm']['gflops'],
        'gemm_fraction': {name: g / extras['gemm']['gflops'] for name, g in gflops.items()},
        'settings': _settings(args, plan, extras),
        'times': {name: [r['elapsed'] for r in runs[key]] for key, name, _ in timed},
        'runs': {name: runs[key] for key, name, _ in timed},
        'warmup_times': {name: ready[key].get('warmup', {}).get('elapsed')
                         for key, name, _ in timed},
        'extras': extras,
        'final_maxrss_mb': {name: measured.final[key]['maxrss_kb'] / 1024.0
                            for key, name, _ in timed},
        'notes': plan.notes + _notes(plan, measured),
    }
    if args.amp:
        result['amp_samples_per_s'] = rates['D']
        result['ratio_amp'] = rates['D'] / rates['A']
        result['gemm_bf16_gflops'] = extras['gemm_bf16']['gflops']
        result['gemm_fraction']['project_amp'] = gflops['project_amp'] / extras['gemm_bf16'][
            'gflops']
        result['bfloat16_path'] = ready['D'].get('bfloat16_path')
    return result


def _thread_results(measured, timed):
    ready, runs = measured.ready, measured.runs
    return {'cpu_count': os.cpu_count(), 'usable_cores': usable_cores(),
            'workers': {name: {
                'OMP_NUM_THREADS': ready[key]['threads']['OMP_NUM_THREADS'],
                'MXNET_ENGINE_TYPE': ready[key]['threads']['MXNET_ENGINE_TYPE']
                or 'default (ThreadedEnginePerDevice)',
                'omp_get_max_threads': ready[key]['threads']['omp_get_max_threads'],
                'os_threads': runs[key][-1]['os_threads'],
                'cores_busy': statistics.median(r['cpu'] / r['elapsed'] for r in runs[key]),
                'gluoncv_gan_imported': ready[key]['threads']['gluoncv_gan_imported'],
                'pre_import': ready[key]['pre_import']} for key, name, _ in timed}}


def _settings(args, plan, extras):
    return {'batch_size': args.batch_size, 'image_size': plan.config['image_size'],
            'iters': args.iters, 'repeats': args.repeats, 'warmup': args.warmup,
            'threads': plan.threads, 'dataset': plan.dataset_name,
            'data_dir': plan.data_dir, 'num_images': len(plan.dataset),
            'reference_images': plan.reference_images, 'seed': args.seed,
            'sample_batch_size': args.sample_batch_size,
            'sample_batches': args.sample_batches,
            'loader_batches': args.loader_batches,
            'jpeg_images': extras['jpeg']['images'],
            'jpeg_num_workers': extras['jpeg']['num_workers'],
            'order': 'interleaved ' + ' '.join(k for k, _, _ in plan.timed) + ' per repeat',
            'workers': [list(w) for w in plan.timed], 'gemm_size': args.gemm_size}


def _notes(plan, measured):
    a = measured.ready['A']
    return ['A: sample and checkpoint intervals are %d iterations, more than the %d the worker '
            'runs, and its loader serves them as one epoch, so no sample grid, checkpoint or '
            'per-epoch write happens in a timed window; the handlers are training\'s, built by '
            'the same function (logging, history, metrics%s run as in training; log_interval '
            '%d: %d log lines fell in timed runs)'
            % (a['sample_interval'], plan.planned,
               ' and TensorBoard' if importlib.util.find_spec('mxboard') else '',
               a['log_interval'], sum(r['log_lines'] for r in measured.runs['A'])),
            'B and C hold %d images of the cache in memory as float32 and feed them with '
            'mx.io.NDArrayIter, as the tutorial does; A reads batches from the uint8 cache'
            % plan.reference_images]
