"""The test harness itself: every test has a timeout, and child output is read with a deadline."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import DEFAULT_TIMEOUT
from output_reader import OutputReader

TESTS = os.path.dirname(os.path.abspath(__file__))
PROBE = '''def test_probe(request):
    print('timeout=%r' % request.config.getoption('timeout'))
'''


def _timeout_seen_by_a_test(tmp_path, *args):
    """The timeout a test sees when pytest runs with this folder's conftest and ``args``."""
    (tmp_path / 'test_probe.py').write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != 'PYTEST_TIMEOUT'}
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [TESTS, env.get('PYTHONPATH')]))
    run = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-s', '-p', 'no:cacheprovider',
                          '-p', 'conftest'] + list(args) + ['test_probe.py'],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return re.search(r'timeout=(\S+)', run.stdout).group(1)


def test_every_test_has_a_default_timeout_that_the_command_line_replaces(tmp_path):
    assert float(_timeout_seen_by_a_test(tmp_path)) == DEFAULT_TIMEOUT
    assert float(_timeout_seen_by_a_test(tmp_path, '--timeout', '7')) == 7.0


def _child(code):
    return OutputReader(subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True))


def test_a_silent_child_fails_the_wait_and_is_killed():
    child = _child("import time; print('started', flush=True); time.sleep(600)")
    assert child.wait_for('started', timeout=60) == ['started\n']
    with pytest.raises(pytest.fail.Exception, match="no line with 'never' in time"):
        child.wait_for('never', timeout=1)
    assert child.proc.returncode == -signal.SIGKILL


def test_output_that_ends_first_fails_the_wait():
    child = _child("print('only line')")
    with pytest.raises(pytest.fail.Exception, match="output ended before a line with 'never'"):
        child.wait_for('never', timeout=60)


def test_finish_returns_the_output_after_the_last_wait():
    child = _child("print('a'); print('b'); print('c'); raise SystemExit(3)")
    assert child.wait_for('b', timeout=60) == ['a\n', 'b\n']
    assert child.finish(timeout=60) == 'c\n'
    assert child.proc.returncode == 3


def test_a_failed_wait_also_kills_the_childs_own_children():
    """A launcher killed alone would leave its workers running; the reader kills the whole
    tree (here a grandchild that ignores SIGTERM, as a worker stuck in a collective would)."""
    grandchild = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                  "time.sleep(600)")
    child = _child("import subprocess, sys, time; "
                   "p = subprocess.Popen([sys.executable, '-c', %r]); "
                   "print('grandchild', p.pid, flush=True); time.sleep(600)" % grandchild)
    pid = int(child.wait_for('grandchild', timeout=60)[0].split()[1])
    with pytest.raises(pytest.fail.Exception, match='no end of the output in time'):
        child.finish(timeout=1)
    assert child.proc.returncode == -signal.SIGKILL
    for _ in range(100):  # the grandchild is reaped by init once it is killed
        with open('/proc/%d/stat' % pid) if os.path.exists('/proc/%d' % pid) else open(os.devnull) as f:
            state = f.read().rsplit(')', 1)[-1].split()[:1]
        if state in ([], ['Z']):
            break
        time.sleep(0.1)
    assert state in ([], ['Z']), 'the grandchild %d is still running' % pid
