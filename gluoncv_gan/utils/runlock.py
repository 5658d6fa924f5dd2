"""One training run per run folder: an exclusive lock that dies with the process holding it.

The lock is ``<run>/train.pid`` (the holder's pid, for the message) beside ``train.pid.lock``,
which carries the operating system's lock (portalocker's :class:`~portalocker.PidFileLock`,
``flock`` on Linux). The kernel drops the lock when its holder exits, however it exits, so the
files a killed run leaves behind do not block the next one.
"""
import os
import time

import portalocker

from .command_line import UserError

__all__ = ['LOCK_FILE', 'RunFolderBusy', 'RunLock']

LOCK_FILE = 'train.pid'


class RunFolderBusy(UserError):
    """Another process trains into the run folder."""


class RunLock:
    """The exclusive lock of a run folder, taken without waiting.

    Parameters
    ----------
    folder : str
        The run folder (created if missing).
    flag : str
        The option that named the folder, for the message.
    """

    def __init__(self, folder, flag='--save-dir'):
        self.folder = os.path.abspath(folder)
        self.flag = flag
        self._lock = None

    def _holder(self, lock):
        # the holder publishes its pid just after it took the lock: give it a moment
        for _ in range(20):
            try:
                pid = lock.read_pid()
            except (OSError, ValueError):
                pid = None
            if pid:
                return pid
            time.sleep(0.05)
        return None

    def acquire(self):
        """Take the lock.

        Raises
        ------
        RunFolderBusy
            When another process holds it; the message names that process's pid.
        """
        os.makedirs(self.folder, exist_ok=True)
        lock = portalocker.PidFileLock(os.path.join(self.folder, LOCK_FILE))
        try:
            lock.acquire()
        except portalocker.AlreadyLocked:
            pid = self._holder(lock)
            raise RunFolderBusy(
                '%s is in use by another training run (pid %s): wait for it to end or stop it '
                '(kill -INT %s, it saves a checkpoint), or choose another %s'
                % (self.folder, pid or 'unknown', pid or '<pid>', self.flag)) from None
        self._lock = lock
        return self

    def release(self):
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
