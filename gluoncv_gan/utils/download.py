"""Download files safely: streamed, checksummed, locked and atomically written.

The public entry point is :func:`download`. It fetches ``http://``, ``https://``
and ``file://`` URLs (or a plain local path) into a temporary file next to the
destination, checks the byte count announced by the server and the checksum
(when given) and only then renames the file into place. A failed or
interrupted download never leaves a file that a later run would trust.
Concurrent downloads of the same destination are serialised by
:func:`file_lock`, so a second process waits and then finds the file ready.

Examples
--------
>>> from gluoncv_gan.utils.download import download
>>> path = download('https://example.com/weights.params',  # doctest: +SKIP
...                 '~/.mxnet/models/weights.params',
...                 checksum='0123456789abcdef0123456789abcdef01234567')
"""
import contextlib
import errno
import fcntl
import glob
import hashlib
import http.client
import logging
import os
import pathlib
import re
import time
import urllib.error
import urllib.parse
import urllib.request

from tqdm import tqdm

from .fileio import atomic_path

__all__ = ['DownloadError', 'download', 'file_checksum', 'check_file',
           'normalize_checksum', 'file_lock']

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
SUPPORTED_SCHEMES = ('http', 'https', 'file')
_HEX_RE = re.compile(r'^[0-9a-f]+$')


class DownloadError(RuntimeError):
    """A download failed: network or HTTP error, short transfer or bad checksum."""


# ----------------------------------------------------------------------------
# checksums
# ----------------------------------------------------------------------------
def _new_hash(algo):
    """Return a fresh ``hashlib`` object for ``algo``.

    Parameters
    ----------
    algo : str
        Hash algorithm name understood by :mod:`hashlib`, e.g. ``'sha1'``.

    Returns
    -------
    hashlib object

    Raises
    ------
    ValueError
        If ``algo`` is not a hash algorithm known to :mod:`hashlib`.
    """
    if not isinstance(algo, str) or algo.lower() not in hashlib.algorithms_available:
        raise ValueError('unknown checksum algorithm {!r}; use one of "md5", "sha1", '
                         '"sha256"'.format(algo))
    return hashlib.new(algo.lower())


def normalize_checksum(checksum, algo='sha1'):
    """Validate a hex checksum string and return it in lower case.

    Parameters
    ----------
    checksum : str
        Hexadecimal digest, e.g. the output of ``sha1sum FILE``.
    algo : str, default 'sha1'
        Algorithm the digest belongs to; fixes the expected length.

    Returns
    -------
    str
        The checksum, stripped and lower-cased.

    Raises
    ------
    ValueError
        If ``checksum`` is not a string of hexadecimal digits of the length
        ``algo`` produces.
    """
    expected_len = _new_hash(algo).digest_size * 2
    if not isinstance(checksum, str):
        raise ValueError('{} checksum must be a string of {} hexadecimal digits, got {!r}'
                         .format(algo, expected_len, checksum))
    value = checksum.strip().lower()
    if len(value) != expected_len or not _HEX_RE.match(value):
        raise ValueError('{} checksum must be {} hexadecimal digits, got {!r}; copy it from '
                         'the output of `{}sum FILE`'.format(algo, expected_len, checksum,
                                                             algo.lower()))
    return value


def file_checksum(path, algo='sha1'):
    """Hash a file, reading it in 1 MB chunks.

    Parameters
    ----------
    path : str
        File to hash.
    algo : str, default 'sha1'
        Hash algorithm name understood by :mod:`hashlib`.

    Returns
    -------
    str
        Lower-case hexadecimal digest.
    """
    digest = _new_hash(algo)
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(CHUNK_SIZE), b''):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path, checksum, algo='sha1'):
    """Tell whether ``path`` is an existing file whose digest equals ``checksum``.

    Parameters
    ----------
    path : str
        File to check.
    checksum : str
        Expected hexadecimal digest (case-insensitive).
    algo : str, default 'sha1'
        Hash algorithm of ``checksum``.

    Returns
    -------
    bool
        ``True`` when the file exists and matches, else ``False``.
    """
    expected = normalize_checksum(checksum, algo)
    return os.path.isfile(path) and file_checksum(path, algo) == expected


# ----------------------------------------------------------------------------
# locking
# ----------------------------------------------------------------------------
def _same_file(fd, path):
    """Tell whether the open descriptor ``fd`` is still the file named ``path``."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _try_flock(fd):
    """Try to take an exclusive ``flock`` on ``fd`` without blocking; return success."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _acquire_lock(lock_path, timeout, poll_interval):
    """Open ``lock_path`` and lock it exclusively; return the descriptor.

    The lock file is unlinked by its holder on release, so after getting the
    lock we check the path still names the file we locked, and retry if not.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    announced = False
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        while not _try_flock(fd):
            if deadline is not None and time.monotonic() >= deadline:
                os.close(fd)
                raise TimeoutError(
                    'could not lock {} within {} s: another process is still working on '
                    'this file; wait for it to finish and run again'.format(lock_path, timeout))
            if not announced:
                logger.info('waiting for another process holding %s', lock_path)
                announced = True
            time.sleep(poll_interval)
        if _same_file(fd, lock_path):
            return fd
        os.close(fd)


@contextlib.contextmanager
def file_lock(path, timeout=3600.0, poll_interval=0.1):
    """Hold an exclusive inter-process lock on ``path + '.lock'``.

    Uses ``fcntl.flock`` (POSIX only). The lock is released automatically if
    the holding process dies; the lock file is removed on a normal release.

    Parameters
    ----------
    path : str
        The resource to protect; the lock file is ``path + '.lock'``.
    timeout : float or None, default 3600.0
        Seconds to wait for the lock; ``None`` waits forever.
    poll_interval : float, default 0.1
        Seconds between attempts while waiting.

    Yields
    ------
    str
        The lock file's path.

    Raises
    ------
    ValueError
        If ``timeout`` or ``poll_interval`` is not a positive number.
    TimeoutError
        If the lock could not be taken within ``timeout`` seconds.
    """
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout >= 0):
        raise ValueError('timeout must be a number of seconds >= 0 or None, got {!r}'
                         .format(timeout))
    if not (isinstance(poll_interval, (int, float)) and poll_interval > 0):
        raise ValueError('poll_interval must be a number of seconds > 0, got {!r}'
                         .format(poll_interval))
    lock_path = os.path.abspath(os.path.expanduser(path)) + '.lock'
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    fd = _acquire_lock(lock_path, timeout, poll_interval)
    try:
        yield lock_path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path)
        os.close(fd)


# ----------------------------------------------------------------------------
# fetching
# ----------------------------------------------------------------------------
def _source_url(url):
    """Turn ``url`` into a URL ``urllib`` can open; plain paths become ``file://``.

    Raises
    ------
    ValueError
        If ``url`` is empty or uses a scheme other than http, https or file.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError('url must be a non-empty string (http://, https://, file:// or a '
                         'local path), got {!r}'.format(url))
    scheme = urllib.parse.urlparse(url).scheme.lower()
    if scheme == '':
        return pathlib.Path(os.path.abspath(os.path.expanduser(url))).as_uri()
    if scheme not in SUPPORTED_SCHEMES:
        raise ValueError('unsupported URL scheme {!r} in {}; use http://, https://, file:// '
                         'or a local path'.format(scheme, url))
    return url


def _open_url(url, timeout):
    """Open ``url`` for reading; return ``(response, total_bytes_or_None)``.

    Raises
    ------
    DownloadError
        On an HTTP error status or when the server cannot be reached.
    """
    request = urllib.request.Request(url, headers={'User-Agent': 'gluoncv-gan-downloader'})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        raise DownloadError('cannot download {}: HTTP error {} {}'
                            .format(url, err.code, err.reason)) from err
    except urllib.error.URLError as err:
        raise DownloadError('cannot download {}: {}; check the URL and your network '
                            'connection'.format(url, err.reason)) from err
    except (OSError, http.client.HTTPException) as err:
        raise DownloadError('cannot download {}: {}'.format(url, err)) from err
    length = response.headers.get('Content-Length')
    total = int(length) if length is not None and length.strip().isdigit() else None
    return response, total


def _copy_stream(response, out_path, url, total, progress):
    """Copy ``response`` into ``out_path`` with a progress bar; return bytes written.

    Raises
    ------
    DownloadError
        If the connection breaks during the transfer.
    """
    got = 0
    bar = tqdm(total=total, unit='B', unit_scale=True, unit_divisor=1024,
               desc=os.path.basename(urllib.parse.urlparse(url).path) or url,
               disable=not progress, leave=False)
    try:
        with open(out_path, 'wb') as out:
            for chunk in iter(lambda: response.read(CHUNK_SIZE), b''):
                out.write(chunk)
                got += len(chunk)
                bar.update(len(chunk))
    except (OSError, http.client.HTTPException) as err:
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise DownloadError('interrupted download: got {} of {} bytes from {} ({}); run again '
                            'to retry'.format(got, total if total is not None else '?', url,
                                              err)) from err
    finally:
        bar.close()
    return got


def _check_length(got, total, url):
    """Raise :class:`DownloadError` when fewer/more bytes arrived than announced."""
    if total is not None and got != total:
        raise DownloadError('interrupted download: got {} of {} bytes from {}; run again to '
                            'retry'.format(got, total, url))


def _check_digest(tmp_path, checksum, algo, url):
    """Raise :class:`DownloadError` when ``tmp_path`` does not hash to ``checksum``."""
    if checksum is None:
        return
    actual = file_checksum(tmp_path, algo)
    if actual != checksum:
        raise DownloadError('checksum mismatch for {}: expected {} {}, got {}; the file was '
                            'discarded. Check the URL and the checksum, then run again'
                            .format(url, algo, checksum, actual))


def _fetch(url, path, checksum, algo, progress, timeout):
    """Download ``url`` to ``path`` through a verified temporary file."""
    response, total = _open_url(url, timeout)
    with response, atomic_path(path) as tmp_path:
        got = _copy_stream(response, tmp_path, url, total, progress)
        _check_length(got, total, url)
        _check_digest(tmp_path, checksum, algo, url)


def _remove_stale_temps(path):
    """Delete temporary files left next to ``path`` by killed earlier downloads.

    Only call this while holding :func:`file_lock` on ``path``.
    """
    folder, name = os.path.split(path)
    pattern = os.path.join(glob.escape(folder), '.' + glob.escape(name) + '.*.tmp')
    for stale in glob.glob(pattern):
        logger.info('removing leftover temporary file %s', stale)
        with contextlib.suppress(FileNotFoundError):
            os.remove(stale)


def _usable_existing(path, checksum, algo):
    """Tell whether an existing ``path`` can be kept; delete it if it is corrupt."""
    if not os.path.exists(path):
        return False
    if checksum is None:
        logger.info('%s exists; no checksum given, so it is used as is', path)
        return True
    if file_checksum(path, algo) == checksum:
        logger.info('%s exists and matches its %s checksum; skipping download', path, algo)
        return True
    logger.warning('%s exists but does not match the expected %s %s; deleting it and '
                   'downloading again', path, algo, checksum)
    os.remove(path)
    return False


def _check_destination(path):
    """Return the absolute destination path; refuse a folder or an empty name."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise ValueError('path must be the destination file name, got {!r}'.format(path))
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if os.path.isdir(path):
        raise ValueError('path {} is a folder; pass the full destination file name, e.g. '
                         '{}'.format(path, os.path.join(path, 'file.tgz')))
    return path


def download(url, path, checksum=None, algo='sha1', overwrite=False, progress=True, timeout=60,
             lock_timeout=3600.0):
    """Download ``url`` to the file ``path``, verifying it before it appears there.

    Parameters
    ----------
    url : str
        ``http://``, ``https://`` or ``file://`` URL, or a plain local path.
    path : str
        Destination file name (not a folder). Its folder is created if needed.
    checksum : str, optional
        Expected hexadecimal digest of the file. When given, an existing file
        is reused only if it matches (a mismatching one is deleted and
        downloaded again) and a new download is renamed into place only if it
        matches.
    algo : str, default 'sha1'
        Hash algorithm of ``checksum``, e.g. ``'md5'`` or ``'sha1'``.
    overwrite : bool, default False
        Download even if ``path`` already exists and is valid.
    progress : bool, default True
        Show a byte progress bar on stderr.
    timeout : float, default 60
        Network timeout in seconds for connecting and for each read.
    lock_timeout : float or None, default 3600.0
        Seconds to wait for another process downloading the same ``path``.

    Returns
    -------
    str
        Absolute path of the downloaded file.

    Raises
    ------
    ValueError
        On a malformed URL, destination, checksum or timeout.
    DownloadError
        On an HTTP or connection error, a short transfer or a checksum
        mismatch. No temporary or partial file is left behind.
    TimeoutError
        If another process holds the download lock longer than ``lock_timeout``.
    """
    source = _source_url(url)
    path = _check_destination(path)
    if checksum is not None:
        checksum = normalize_checksum(checksum, algo)
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError('timeout must be a number of seconds > 0, got {!r}'.format(timeout))
    with file_lock(path, timeout=lock_timeout):
        _remove_stale_temps(path)
        if not overwrite and _usable_existing(path, checksum, algo):
            return path
        logger.info('downloading %s to %s', url, path)
        _fetch(source, path, checksum, algo, progress, timeout)
    return path
