"""The benchmark's results as a text table."""
from .workers import WORKERS

__all__ = ['format_report']


def format_report(result):
    """The results as a text table."""
    s = result['settings']
    lines = ['gluoncv-gan training benchmark: batch %d, %dx%d, %s (%d images); median of %d runs '
             'of %d iterations after %d warm-up iterations, %s'
             % (s['batch_size'], s['image_size'], s['image_size'], s['dataset'],
                s['num_images'], s['repeats'], s['iters'], s['warmup'], s['order']),
             '']
    header = '%-34s %9s %7s %8s %6s %7s %6s %7s %8s  %s' % (
        'step', 'samples/s', 'vs A', 'GFLOP/s', 'OMP', 'omp max', 'OS thr', 'busy', 'RSS MB',
        'times (s)')
    lines += [header, '-' * len(header)]
    rates = {'A': result['train_samples_per_s'], 'B': result['reference_samples_per_s'],
             'C': result['reference_tuned_samples_per_s'], 'D': result.get('amp_samples_per_s')}
    for key, name, label in [tuple(w) for w in s.get('workers', WORKERS)]:
        t = result['threads']['workers'][name]
        lines.append('%-34s %9.2f %7.2f %8.1f %6s %7s %6s %7.2f %8.0f  %s' % (
            '%s %s' % (key, label), rates[key], rates[key] / rates['A'], result['gflops'][name],
            t['OMP_NUM_THREADS'] or 'unset', t['omp_get_max_threads'], t['os_threads'],
            t['cores_busy'], result['peak_rss_mb'][name],
            ' '.join('%.2f' % x for x in result['times'][name])))
    flops = result['flops_per_image']
    lines += ['',
              'ratio A/B (project vs tutorial with MXNet defaults): %.2fx' % result['ratio'],
              'ratio A/C (project vs tutorial with the project\'s threads): %.2fx'
              % result['ratio_tuned'],
              'generator sampling (batch %d, inference, hybridized): %.1f images/s'
              % (s['sample_batch_size'], result['sample_images_per_s']),
              'CachedBatchLoader from the uint8 cache: %.0f images/s'
              % result['loader_images_per_s'],
              'JPEG decoding without a cache (DataLoader, %d thread workers, %d images): '
              '%.0f images/s' % (s['jpeg_num_workers'], s['jpeg_images'],
                                 result['loader_jpeg_images_per_s']),
              'FLOPs per training image: project %.3f GFLOP (%s), tutorial %.3f GFLOP (%s); '
              'Fg %.3f, Fd %.3f GFLOP'
              % (flops['project'] / 1e9, flops['formula']['project'], flops['reference'] / 1e9,
                 flops['formula']['reference'], flops['generator_forward'] / 1e9,
                 flops['discriminator_forward'] / 1e9)]
    if result.get('gemm_gflops'):
        lines.append('measured fp32 GEMM (oneDNN inner product %dx%d, best of 5, %s threads): '
                     '%.0f GFLOP/s; achieved: A %.0f%%, C %.0f%% of it'
                     % (s['gemm_size'], s['gemm_size'], s['threads'], result['gemm_gflops'],
                        100 * result['gemm_fraction']['project'],
                        100 * result['gemm_fraction']['reference_tuned']))
    if result.get('amp_samples_per_s'):
        lines.append('--amp (bfloat16, imperative nets; the kernels below name the operators): '
                     '%.2f samples/s, %.2fx the fp32 project step'
                     % (result['amp_samples_per_s'], result['ratio_amp']))
        lines.append('measured bfloat16 GEMM (same product, bfloat16 operands): %.0f GFLOP/s '
                     '(%.2fx the fp32 one); achieved: D %.0f%% of it (fp32-equivalent FLOPs)'
                     % (result['gemm_bf16_gflops'],
                        result['gemm_bf16_gflops'] / result['gemm_gflops'],
                        100 * result['gemm_fraction']['project_amp']))
        path = result.get('bfloat16_path') or {}
        onednn = result.get('onednn') or {}
        lines.append('%s; oneDNN ISA: %s' % (path.get('line', 'bfloat16 path: unknown'),
                                             onednn.get('isa') or 'unknown (%s)'
                                             % (onednn.get('error') or 'no verbose output')))
        lines.append('oneDNN bfloat16 kernels: %s' % (', '.join(
            '%s %s %s' % (k[0], k[2], k[1]) for k in onednn.get('kernels', []) if k[3] == 'bf16')
            or 'none seen'))
    lines.append('MXNet features: %s' % ', '.join(result['mxnet_features']))
    lines.append('cpu count %d, usable cores %d; MXNET_ENGINE_TYPE %s; "busy" = CPU time / wall '
                 'time of the worker during its timed runs'
                 % (result['threads']['cpu_count'], result['threads']['usable_cores'],
                    result['threads']['workers']['project']['MXNET_ENGINE_TYPE']))
    lines += ['note: %s' % n for n in result['notes']]
    lines.append('benchmark wall time: %.0f s' % result['wall_seconds'])
    return '\n'.join(lines)
