"""Command-line errors: one line, ``error: <what>; <what to do>``, exit code 2, no traceback.

Every command's ``main`` is wrapped in :func:`command`. Expected failures (a bad flag or file,
a full or read-only disk, a damaged checkpoint, a missing GPU) become one line on stderr;
anything else keeps its traceback. ``--debug`` on the command line, or the environment variable
``GLUONCV_GAN_DEBUG=1``, shows the traceback of expected failures too.
"""
import errno
import functools
import os
import sys

import mxnet as mx

__all__ = ['UserError', 'DEBUG_VARIABLE', 'EXIT_ERROR', 'command', 'describe_error',
           'debug_requested', 'add_debug_flag']

DEBUG_VARIABLE = 'GLUONCV_GAN_DEBUG'
EXIT_ERROR = 2


class UserError(Exception):
    """A failure the user can fix; its message says what went wrong and what to do."""


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
            except caught as err:
                if debug_requested(argv):
                    raise
                print('error: %s' % describe_error(err), file=sys.stderr, flush=True)
                sys.exit(EXIT_ERROR)
        return wrapper
    return decorate
