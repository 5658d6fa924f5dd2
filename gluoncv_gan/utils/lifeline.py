"""Child processes that end with the process that started them, even when it dies by SIGKILL.

Two mechanisms, because either alone can fail:

- :func:`die_with_parent`, run in the child before it executes its program: Linux sends the
  child a signal when its parent dies (``prctl(PR_SET_PDEATHSIG)``);
- :func:`watch_parent`, run in the child's program: a thread that notices the parent is gone
  and ends the process after a grace period. SIGTERM alone may not end a worker that is blocked
  in MXNet's parameter server waiting for a peer that is gone, since its handler runs only
  between two Python instructions.

The parent passes its pid in :data:`PARENT_VARIABLE` (:func:`child_environment`). This module
imports nothing from the package and nothing beyond the standard library, so that it can run
before MXNet is imported.
"""
import ctypes
import os
import signal
import threading
import time

__all__ = ['PARENT_VARIABLE', 'GRACE_SECONDS', 'die_with_parent', 'child_environment',
           'watch_parent']

PARENT_VARIABLE = 'GLUONCV_GAN_PARENT_PID'
# seconds an orphan has to stop cleanly (on the SIGTERM) before it is killed
GRACE_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


def die_with_parent(signum=signal.SIGTERM):
    """Ask Linux to send ``signum`` to this process when its parent dies.

    Meant for ``subprocess.Popen(preexec_fn=...)``; does nothing where ``prctl`` is missing.
    """
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signum))
    except (OSError, AttributeError):
        pass


def child_environment(env=None):
    """A copy of ``env`` (default: this process's) that names this process as the parent."""
    env = dict(os.environ if env is None else env)
    env[PARENT_VARIABLE] = str(os.getpid())
    return env


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _end(grace):
    """SIGTERM this process (a clean stop where possible), then SIGKILL it and its group."""
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)
    if os.getpgrp() == os.getpid():  # the leader of its own group: its children go too
        os.killpg(os.getpid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def _watch(parent, grace, poll):
    while os.getppid() == parent:
        time.sleep(poll)
    _end(grace)


def watch_parent(grace=GRACE_SECONDS, poll=0.5):
    """End this process ``grace`` seconds after the parent named in :data:`PARENT_VARIABLE` dies.

    The variable is removed from the environment, so that this process's own children do not
    watch a process that is not their parent. Returns the watching thread, or None when the
    variable is unset or names a live process that is not this one's parent.
    """
    value = os.environ.pop(PARENT_VARIABLE, '')
    if not value.isdigit():
        return None
    parent = int(value)
    if os.getppid() != parent:
        if _alive(parent):
            return None  # the variable came from elsewhere
        parent = os.getppid()  # the parent died before this process got here
        thread = threading.Thread(target=_end, args=(grace,), daemon=True)
    else:
        thread = threading.Thread(target=_watch, args=(parent, grace, poll), daemon=True)
    thread.name = 'gluoncv-gan-watch-parent'
    thread.start()
    return thread
