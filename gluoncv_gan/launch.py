"""Run a parameter-server training job on this machine: a scheduler, servers and workers.

Example::

    python -m gluoncv_gan.launch -n 2 -s 1 -- \\
        python -m gluoncv_gan.train --kvstore dist_sync --config configs/dcgan_lfw.yaml

Every process runs the same command on 127.0.0.1 with the DMLC_* environment of its role, its
output lines prefixed ``[scheduler] ``, ``[server i] `` or ``[worker i] ``. A failed process stops
all the others; Ctrl-C stops the workers after their iteration (rank 0 saves a checkpoint); if
the launcher dies, its processes end too (:mod:`gluoncv_gan.utils.lifeline`). Exit codes,
timeouts and several machines: docs/distributed.md#the-launcher-one-machine.
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from .utils.command_line import prog

from .utils.command_line import add_debug_flag, command
from .utils.cores import usable_cores
from .utils.lifeline import child_environment, die_with_parent

__all__ = ['free_port', 'role_environment', 'Job', 'parse_args', 'main']


def free_port(host='127.0.0.1'):
    """A TCP port on ``host`` that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def role_environment(role, port, num_workers, num_servers, host='127.0.0.1', base=None):
    """The environment of one process of the job: ``base`` (default os.environ) plus DMLC_*.

    Unless the user set OMP_NUM_THREADS, the workers share the machine's cores and the servers
    and the scheduler (which only add and pass on arrays) get one thread each.
    """
    env = dict(os.environ if base is None else base)
    if base is None:
        from . import USER_OMP_NUM_THREADS  # importing the package set a default for itself
        if USER_OMP_NUM_THREADS is None:
            env.pop('OMP_NUM_THREADS', None)
    env.update({'DMLC_ROLE': role, 'DMLC_PS_ROOT_URI': host, 'DMLC_PS_ROOT_PORT': str(port),
                'DMLC_NUM_WORKER': str(num_workers), 'DMLC_NUM_SERVER': str(num_servers),
                # the address this process announces to the others: loopback
                'DMLC_NODE_HOST': host,
                'PYTHONUNBUFFERED': '1'})
    if 'OMP_NUM_THREADS' not in env:
        threads = max(1, usable_cores() // num_workers) if role == 'worker' else 1
        env['OMP_NUM_THREADS'] = str(threads)
    return env


def _describe_exit(code):
    if code < 0:
        try:
            return 'was killed by %s' % signal.Signals(-code).name
        except ValueError:
            return 'was killed by signal %d' % -code
    return 'exited with code %d' % code


class _Stop(Exception):
    """The launcher was asked to stop (SIGINT, SIGTERM, SIGHUP)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


class Job:
    """The processes of one job and the threads that forward their output.

    Parameters
    ----------
    command : list of str
        The command every process runs.
    num_workers, num_servers : int
        Processes of each role (plus one scheduler).
    port : int
        The scheduler's port.
    grace : float
        Seconds between SIGTERM and SIGKILL when stopping.
    out : file
        Where forwarded lines go (default sys.stdout).
    """

    def __init__(self, command, num_workers, num_servers, port, grace=5.0, out=None):
        self.command, self.port, self.grace = command, port, grace
        self.num_workers, self.num_servers = num_workers, num_servers
        self.out = out or sys.stdout
        self.procs = []  # (name, role, Popen)
        self._threads = []
        self._lock = threading.Lock()

    def say(self, line):
        with self._lock:
            self.out.write('[launch] %s\n' % line)
            self.out.flush()

    def _forward(self, name, stream):
        prefix = ('[%s] ' % name).encode()
        out = getattr(self.out, 'buffer', None)
        for line in iter(stream.readline, b''):
            if not line.endswith(b'\n'):
                line += b'\n'
            with self._lock:
                if out is not None:
                    out.write(prefix + line)
                else:
                    self.out.write((prefix + line).decode('utf-8', 'replace'))
                self.out.flush()
        stream.close()

    def start(self):
        roles = [('scheduler', 'scheduler')]
        roles += [('server %d' % i, 'server') for i in range(self.num_servers)]
        roles += [('worker %d' % i, 'worker') for i in range(self.num_workers)]
        for name, role in roles:
            env = child_environment(role_environment(role, self.port, self.num_workers,
                                                     self.num_servers))
            try:
                proc = subprocess.Popen(self.command, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        start_new_session=True,  # its own process group
                                        preexec_fn=die_with_parent
                                        if sys.platform.startswith('linux') else None)
            except OSError:
                self.stop()  # the processes already started
                raise
            self.procs.append((name, role, proc))
        for name, role, proc in self.procs:
            self.say('started %s (pid %d)' % (name, proc.pid))
        # started after every Popen: preexec_fn is not safe while other threads run
        for name, _, proc in self.procs:
            thread = threading.Thread(target=self._forward, args=(name, proc.stdout), daemon=True)
            thread.start()
            self._threads.append(thread)

    def first_failure(self):
        """(name, exit code) of a process that failed, or None."""
        for name, _, proc in self.procs:
            code = proc.poll()
            if code is not None and code != 0:
                return name, code
        return None

    def workers_done(self):
        return all(proc.poll() is not None for _, role, proc in self.procs if role == 'worker')

    def all_done(self):
        return all(proc.poll() is not None for _, _, proc in self.procs)

    def _signal_groups(self, signum, role=None):
        # every group, even of a process that has exited: its children may still run
        for _, proc_role, proc in self.procs:
            if role is not None and proc_role != role:
                continue
            try:
                os.killpg(proc.pid, signum)
            except (ProcessLookupError, PermissionError):
                pass

    def stop(self):
        """SIGTERM every process group, SIGKILL what is left after the grace period; reap all."""
        self._signal_groups(signal.SIGTERM)
        deadline = time.time() + self.grace
        while not self.all_done() and time.time() < deadline:
            time.sleep(0.05)
        self._signal_groups(signal.SIGKILL)
        for _, _, proc in self.procs:
            proc.wait()
        self.join_output()

    def forward_to_workers(self, signum, timeout):
        """Send ``signum`` to the workers; wait up to ``timeout`` s for them to exit.

        Returns True when every worker exited in time.
        """
        self._signal_groups(signum, role='worker')
        deadline = time.time() + timeout
        while not self.workers_done():
            if time.time() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def join_output(self, timeout=5.0):
        for thread in self._threads:
            thread.join(timeout)

    def run(self, shutdown_timeout=30.0, poll=0.1):
        """Start the job and watch it; return the launcher's exit code."""
        self.start()
        while True:
            failed = self.first_failure()
            if failed:
                name, code = failed
                self.say('%s %s: stopping the job' % (name, _describe_exit(code)))
                self.stop()
                return code if code > 0 else 128 - code
            if self.workers_done():
                break
            time.sleep(poll)
        deadline = time.time() + shutdown_timeout
        while not self.all_done() and time.time() < deadline:
            if self.first_failure():
                break
            time.sleep(poll)
        failed = self.first_failure()
        if failed:
            self.say('%s %s after the workers finished' % (failed[0], _describe_exit(failed[1])))
        elif not self.all_done():
            self.say('the workers finished, but the servers and the scheduler did not stop '
                     'within %g s: stopping them' % shutdown_timeout)
        self.stop()
        if failed:
            return failed[1] if failed[1] > 0 else 128 - failed[1]
        self.say('all workers finished')
        return 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Run a parameter-server training job (scheduler, servers, workers) on this '
                    'machine, on 127.0.0.1.',
        usage='%(prog)s -n WORKERS [-s SERVERS] [--port PORT] -- COMMAND...',
        epilog='Example: python -m gluoncv_gan.launch -n 2 -s 1 -- python -m gluoncv_gan.train '
               '--kvstore dist_sync --dataset lfw_sample')
    parser.prog = prog('gluoncv_gan.launch')  # the command's real name in usage lines
    parser.add_argument('-n', '--num-workers', type=int, required=True, help='worker processes')
    parser.add_argument('-s', '--num-servers', type=int, default=None,
                        help='server processes (default: as many as workers)')
    parser.add_argument('--port', type=int, default=None,
                        help="the scheduler's port (default: a free one)")
    parser.add_argument('--grace', type=float, default=5.0,
                        help='seconds between SIGTERM and SIGKILL when stopping the job')
    parser.add_argument('--shutdown-timeout', type=float, default=30.0,
                        help='seconds to wait for the servers and the scheduler after the workers')
    parser.add_argument('--stop-timeout', type=float, default=120.0,
                        help='after Ctrl-C or SIGTERM: seconds the workers get to finish their '
                             'iteration and save a checkpoint before everything is stopped')
    add_debug_flag(parser)
    parser.add_argument('command', nargs=argparse.REMAINDER,
                        help='the training command, after --')
    args = parser.parse_args(argv)
    if args.command and args.command[0] == '--':
        args.command = args.command[1:]
    if not args.command:
        parser.error('give the command to run after --, e.g. -- python -m gluoncv_gan.train '
                     '--kvstore dist_sync ...')
    if args.num_workers < 1:
        parser.error('-n must be at least 1, got %d' % args.num_workers)
    if args.num_servers is None:
        args.num_servers = args.num_workers
    if args.num_servers < 1:
        parser.error('-s must be at least 1 (the workers reduce through the servers), got %d'
                     % args.num_servers)
    return args


@command()
def main(argv=None):
    args = parse_args(argv)
    port = args.port or free_port()
    job = Job(args.command, args.num_workers, args.num_servers, port, grace=args.grace)

    def on_signal(signum, frame):
        raise _Stop(signum)
    # SIGINT too: a launcher started in the background by a shell inherits SIGINT ignored, and
    # Python then raises no KeyboardInterrupt, so `kill -INT` would not stop the job
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    job.say('scheduler on 127.0.0.1:%d, %d servers, %d workers: %s'
            % (port, args.num_servers, args.num_workers, ' '.join(args.command)))
    try:
        code = job.run(shutdown_timeout=args.shutdown_timeout)
    except (KeyboardInterrupt, _Stop) as stop:
        signum = getattr(stop, 'signum', signal.SIGINT)
        code = 128 + signum
        signal.signal(signal.SIGINT, on_signal)  # a second Ctrl-C: stop at once
        job.say('interrupted by %s: stopping the job (the workers finish their iteration and '
                'save a checkpoint; again to stop everything at once)'
                % signal.Signals(signum).name)
        try:
            # the workers stop gracefully on SIGINT and SIGTERM (SIGHUP would kill them)
            forward = signum if signum in (signal.SIGINT, signal.SIGTERM) else signal.SIGTERM
            if not job.forward_to_workers(forward, args.stop_timeout):
                job.say('the workers did not stop within %g s: stopping everything'
                        % args.stop_timeout)
        except (KeyboardInterrupt, _Stop):
            job.say('interrupted again: stopping everything now')
        # ignore further Ctrl-C and SIGTERM while the job is being stopped
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        job.stop()
    sys.exit(code)


if __name__ == '__main__':
    main()
