"""The benchmark's worker processes, seen from the parent: how each starts, one JSON reply per
request line, and the checks of what they report."""
import json
import os
import signal
import subprocess
import sys

from ..utils.lifeline import child_environment, die_with_parent

__all__ = ['WORKERS', 'AMP_WORKER', 'BOOTSTRAP', 'WorkerProcess', 'resolve_data',
           'check_threads']

WORKERS = (('A', 'project', 'project: estimator + handlers'),
           ('B', 'reference_default', 'tutorial step, MXNet defaults'),
           ('C', 'reference_tuned', 'tutorial step, project threads'))
AMP_WORKER = ('D', 'project_amp', 'project with --amp (bfloat16)')
# Runs gluoncv_gan/benchmark/reference.py as a plain file: the package __init__ is never imported.
BOOTSTRAP = ("import runpy, sys; path = sys.argv[1]; sys.argv = sys.argv[1:]; "
             "runpy.run_path(path, run_name='__main__')")


def _die_at_once_with_parent():
    die_with_parent(signal.SIGKILL)


class WorkerProcess(object):
    """A worker process: one JSON reply per request line."""

    def __init__(self, key, command, env, cwd, log_path):
        self.key, self.log_path = key, log_path
        self._log = open(log_path, 'w')
        # a worker holds nothing to save: it dies at once with the benchmark, even a SIGKILLed one
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, env=child_environment(env), cwd=cwd,
                                     universal_newlines=True, bufsize=1,
                                     preexec_fn=_die_at_once_with_parent
                                     if sys.platform.startswith('linux') else None)

    def _tail(self):
        self._log.flush()
        with open(self.log_path) as f:
            return ''.join(f.readlines()[-25:])

    def read(self):
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError('benchmark worker %s exited (code %s); its log ends with:\n%s'
                               % (self.key, self.proc.returncode, self._tail()))
        message = json.loads(line)
        if message.get('status') == 'error':
            raise RuntimeError('benchmark worker %s: %s' % (self.key, message.get('message')))
        return message

    def ask(self, request):
        self.proc.stdin.write(request + '\n')
        self.proc.stdin.flush()
        return self.read()

    def close(self):
        """Ask the worker to quit; returns its last report."""
        message = self.ask('quit')
        self.proc.wait(timeout=120)
        self._log.close()
        return message

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self._log.closed:
            self._log.close()


def resolve_data(args):
    """(dataset name, data_dir, note) the benchmark trains on."""
    from ..utils.paths import default_dataset_root
    if args.dataset == 'lfw_sample':
        return 'lfw_sample', None, None
    if args.dataset == 'lfw' or args.data_dir:
        return 'lfw', args.data_dir, None
    root = default_dataset_root('lfw')
    if os.path.isdir(os.path.join(root, 'lfw-deepfunneled')):
        return 'lfw', root, None
    return 'lfw_sample', None, ('LFW is not prepared at %s, so the bundled lfw_sample faces are '
                                'used (prepare LFW with python -m gluoncv_gan.data.prepare_lfw, '
                                'or pass --data-dir)' % root)


def check_threads(ready, threads):
    """Stop unless B runs with MXNet's defaults and A and C with ``threads`` OpenMP threads."""
    b = ready['B']
    problems = []
    if b['pre_import']['gluoncv_gan_imported'] or b['threads']['gluoncv_gan_imported']:
        problems.append('gluoncv_gan was imported')
    if b['pre_import']['mxnet_already_imported']:
        problems.append('mxnet was imported before the reference module')
    if b['pre_import']['OMP_NUM_THREADS'] is not None:
        problems.append('OMP_NUM_THREADS was set')
    set_vars = [k for k, v in b['threads']['environment'].items() if v is not None]
    if set_vars:
        problems.append('thread variables were set: %s' % ', '.join(set_vars))
    if problems:
        raise RuntimeError('the default-settings reference worker does not run with MXNet\'s '
                           'defaults: %s' % '; '.join(problems))
    for key in ('A', 'C'):
        report = ready[key]['threads']
        if report['OMP_NUM_THREADS'] != str(threads):
            raise RuntimeError('worker %s runs with OMP_NUM_THREADS=%s, not %d'
                               % (key, report['OMP_NUM_THREADS'], threads))
        if report['omp_get_max_threads'] not in (None, threads):
            raise RuntimeError('worker %s: OpenMP uses %s threads, not %d'
                               % (key, report['omp_get_max_threads'], threads))
