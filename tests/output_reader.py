"""A child process's output read line by line with a deadline, so that a silent hang fails.

``for line in proc.stdout`` blocks until the child writes or exits, so a deadline checked inside
that loop never fires when the child hangs without output. Here a thread reads the pipe and the
test waits on a queue with a timeout.
"""
import os
import queue
import signal
import subprocess
import threading
import time

import pytest


def _descendants(pid):
    """The pids of ``pid``'s children, grandchildren and so on, read from /proc."""
    children = {}
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                with open('/proc/%s/stat' % name) as f:
                    parent = int(f.read().rsplit(')', 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class OutputReader(object):
    """Collect ``proc.stdout`` in a thread; wait for lines with :meth:`wait_for`, end with
    :meth:`finish`. The reader owns the pipe: do not call ``proc.communicate`` as well.

    Parameters
    ----------
    proc : subprocess.Popen
        Started with ``stdout=subprocess.PIPE`` and ``text=True``.
    """

    def __init__(self, proc):
        self.proc = proc
        self.lines = []
        self._returned = 0
        self._queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)  # end of output

    def _next_line(self, deadline, waiting_for):
        try:
            line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            self._fail('no %s in time' % waiting_for)
        if line is not None:
            self.lines.append(line)
        return line

    def _fail(self, what):
        # the children first, while they are still the child's: a launcher killed alone would
        # leave its workers behind, waiting for peers that are gone
        for pid in _descendants(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.proc.kill()
        self.proc.wait(30)
        pytest.fail('%s; the output so far:\n%s' % (what, ''.join(self.lines)), pytrace=False)

    def _take(self):
        taken, self._returned = self.lines[self._returned:], len(self.lines)
        return taken

    def wait_for(self, text, timeout):
        """Read until a line contains ``text``; return the lines read since the last return.

        Fails the test, killing the process, after ``timeout`` seconds or at the end of the
        output.
        """
        deadline = time.monotonic() + timeout
        while True:
            line = self._next_line(deadline, 'line with %r' % text)
            if line is None:
                self._fail('the output ended before a line with %r' % text)
            if text in line:
                return self._take()

    def finish(self, timeout):
        """Wait for the end of the output and the process's exit; return the output since the
        last return, as one string. Fails the test, killing the process, after ``timeout``
        seconds."""
        deadline = time.monotonic() + timeout
        while self._next_line(deadline, 'end of the output') is not None:
            pass
        try:
            self.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._fail('the process closed its output but did not exit in time')
        return ''.join(self._take())
