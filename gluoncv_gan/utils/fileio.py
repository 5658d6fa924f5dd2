"""Atomic file writes: a reader never sees a half-written file."""
import contextlib
import glob
import logging
import os
import tempfile

__all__ = ['atomic_path', 'remove_leftover_temps']

logger = logging.getLogger(__name__)


def _temp_prefix(path):
    return '.' + os.path.basename(path) + '.'


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it over ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = os.path.abspath(os.path.expanduser(path))
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix='.tmp', dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
    try:
        yield tmp
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def remove_leftover_temps(path):
    """Delete the temporary files of :func:`atomic_path` that a killed writer left beside ``path``.

    Call it only while no other process can be writing ``path``, e.g. under a lock.
    """
    path = os.path.abspath(os.path.expanduser(path))
    pattern = glob.escape(os.path.join(os.path.dirname(path), _temp_prefix(path))) + '*.tmp'
    for stale in glob.glob(pattern):
        logger.info('removing leftover temporary file %s', stale)
        with contextlib.suppress(FileNotFoundError):
            os.remove(stale)
