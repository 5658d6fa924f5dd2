"""Command-line errors: one line, ``error: <what>; <what to do>``, exit code 2, no traceback.

Every command's ``main`` is wrapped in :func:`command`. Expected failures (a bad flag or file,
a full or read-only disk, a damaged checkpoint, a missing GPU) become one line on stderr;
anything else keeps its traceback. ``--debug`` on the command line, or the environment variable
``GLUONCV_GAN_DEBUG=1``, shows the traceback of expected failures too.
"""
import argparse
import errno
import functools
import os
import sys

import mxnet as mx

__all__ = ['UserError', 'CommandExit', 'DEBUG_VARIABLE', 'EXIT_ERROR', 'command',
           'describe_error', 'debug_requested', 'add_debug_flag', 'check_output_path', 'prog',
           'SEED_ALLOWED', 'valid_seed', 'seed_argument']

DEBUG_VARIABLE = 'GLUONCV_GAN_DEBUG'
EXIT_ERROR = 2
# every seed of every command seeds NumPy's RandomState, which takes 32-bit unsigned integers
SEED_ALLOWED = 'an integer from 0 to 4294967295 (2**32 - 1)'


class UserError(Exception):
    """A failure the user can fix; its message says what went wrong and what to do."""


class CommandExit(SystemExit):
    """Exit with :data:`EXIT_ERROR`; ``str()`` is the message (already printed on stderr)."""

    def __init__(self, message):
        super().__init__(EXIT_ERROR)
        self.message = message

    def __str__(self):
        return self.message


# what to do about an OSError, by errno
_OS_HINTS = {
    errno.ENOSPC: 'free some space on that disk or choose a folder on another one, then run '
                  'the command again',
    errno.EDQUOT: 'free some space within your quota or choose another folder, then run the '
                  'command again',
    errno.EROFS: 'the filesystem is read-only: choose a writable folder',
    errno.EACCES: 'check its permissions or choose another folder',
    errno.EPERM: 'check its permissions or choose another folder',
    errno.ENOTDIR: 'a part of the path is a regular file, not a folder: choose another path',
    errno.EEXIST: 'something already has that name: remove it or choose another path',
    errno.EISDIR: 'that is a folder: name a file inside it instead',
    errno.ENOENT: 'check the path',
}


def _last_line(text):
    """The most telling line of a multi-line message (MXNet's end with the error itself)."""
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(('Stack trace', '[bt]', 'File "'))]
    return lines[-1] if lines else ''


def describe_error(err):
    """The one-line ``<what>; <what to do>`` of an expected failure."""
    if isinstance(err, OSError) and err.errno in _OS_HINTS:
        where = err.filename if err.filename is not None else ''
        what = '%s%s' % (err.strerror or os.strerror(err.errno), ': %s' % where if where else '')
        return '%s; %s' % (what, _OS_HINTS[err.errno])
    if isinstance(err, mx.base.MXNetError):
        line = _last_line(err)
        if 'USE_CUDA' in line or 'GPU' in line.upper():
            return ('%s; this mxnet has no GPU support or sees no GPU: train on the CPU '
                    "(--gpus '') or install a CUDA build of mxnet" % line)
        return '%s; check the file or flag it came from (run again with --debug for the ' \
               'details)' % line
    return _last_line(err) or type(err).__name__


def debug_requested(argv=None):
    """True when ``--debug`` is among the arguments or ``$GLUONCV_GAN_DEBUG`` is set."""
    argv = sys.argv[1:] if argv is None else argv
    flag = os.environ.get(DEBUG_VARIABLE, '').strip().lower()
    return '--debug' in argv or flag not in ('', '0', 'false', 'no')


def add_debug_flag(parser):
    """Document ``--debug`` in a command's parser (it is read by :func:`command`)."""
    parser.add_argument('--debug', action='store_true',
                        help='show the traceback of an error (also: %s=1)' % DEBUG_VARIABLE)
    return parser


def command(expected=()):
    """Decorate a command's ``main(argv=None)``: expected failures exit 2 with one line.

    A ``sys.exit('error: ...')`` inside ``main`` also becomes that line on stderr and exit 2.

    Parameters
    ----------
    expected : tuple of exception types
        Failures of this command that are the user's to fix, beyond :class:`UserError`,
        ``OSError`` and ``MXNetError`` (e.g. ``ValueError`` for a command whose ValueErrors
        are all about its input).
    """
    caught = (UserError, OSError, mx.base.MXNetError) + tuple(expected)

    def decorate(main):
        @functools.wraps(main)
        def wrapper(argv=None):
            try:
                return main(argv)
            except SystemExit as stop:
                if not (isinstance(stop.code, str) and stop.code.startswith('error: ')):
                    raise
                message = ' '.join(stop.code.split())
            except caught as err:
                if debug_requested(argv):
                    raise
                message = 'error: %s' % ' '.join(describe_error(err).split())
            print(message, file=sys.stderr, flush=True)
            raise CommandExit(message)
        return wrapper
    return decorate


def _nearest_existing(path):
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def check_output_path(path, flag, folder=False):
    """Refuse, before any work, an output path that cannot be written.

    Parameters
    ----------
    path : str
        The file (or, with ``folder``, the folder) a command will write.
    flag : str
        The option that named it, for the message (e.g. ``'--json'``).
    folder : bool
        ``path`` is a folder to create or use, not a file.

    Raises
    ------
    UserError
        When ``path`` is a folder (a file was asked for) or a file (a folder was asked for),
        lies under a regular file, or its nearest existing folder is not writable.
    """
    path = os.path.abspath(os.path.expanduser(path))
    if not folder and os.path.isdir(path):
        raise UserError('%s %s is a folder; name a file inside it instead' % (flag, path))
    if folder and os.path.exists(path) and not os.path.isdir(path):
        raise UserError('%s %s is a file, not a folder; choose another path' % (flag, path))
    existing = _nearest_existing(path if folder else os.path.dirname(path))
    if not os.path.isdir(existing):
        raise UserError('%s %s is under %s, which is a file, not a folder; choose another path'
                        % (flag, path, existing))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError('%s %s cannot be written: %s is read-only or not yours; choose a '
                        'writable folder' % (flag, path, existing))
    return path


def prog(module):
    """The name of the running command, for ``argparse.ArgumentParser(prog=...)``.

    The console scripts (``gluoncv-gan <command>``, ``gluoncv-gan-train``...) are named by
    ``sys.argv[0]``; anything else, e.g. ``python -m gluoncv_gan.train``, is named by how the
    module ``module`` is run.
    """
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ''
    return name if name.startswith('gluoncv-gan') else 'python -m ' + module


def valid_seed(value):
    """True for a seed every command can use: an integer, 0 <= seed < 2**32."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 32


def seed_argument(text):
    """``type=`` of a ``--seed`` flag: the seed, or an argparse error saying what is allowed."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if not valid_seed(value):
        raise argparse.ArgumentTypeError('%r is not a seed; allowed: %s' % (text, SEED_ALLOWED))
    return value
