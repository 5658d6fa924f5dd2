"""Download files safely: checksummed, retried, resumed, locked and atomically written.

:func:`download` streams ``http(s)://`` or ``file://`` URLs (or a local path) into a temporary
file beside the destination. A dropped connection, a timeout or a 408, 429 or 5xx answer is
retried with doubling waits, and the transfer resumes with an HTTP Range request (from the
start if the server ignores it). The file is renamed into place only once its announced length
and checksum are right. :func:`file_lock` serialises downloads of one file across processes.

``mxnet.gluon.utils.download`` is not used: it renames a file that fails its sha1 check into
place before raising, has no network timeout, leaves its temporary file behind on errors,
retries at once, and has neither md5, ``file://`` nor resume.
"""
import contextlib
import errno
import hashlib
import http.client
import logging
import math
import os
import pathlib
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import portalocker
from tqdm import tqdm

from .fileio import atomic_path, remove_leftover_temps

__all__ = ['DownloadError', 'download', 'file_checksum', 'check_file', 'normalize_checksum',
           'file_lock', 'keep_if_valid', 'RETRIES', 'BACKOFF']

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
RETRIES = 3
BACKOFF = 1.0  # seconds before the first retry, doubled before each further one
_RETRY_STATUS = (408, 429, 500, 502, 503, 504)


class DownloadError(RuntimeError):
    """A download failed: network or HTTP error, short transfer or bad checksum."""


class _Transient(DownloadError):
    """A failure worth retrying: a dropped connection, a timeout or a 5xx answer."""


def _new_hash(algo):
    if not isinstance(algo, str) or algo.lower() not in hashlib.algorithms_available:
        raise ValueError('unknown checksum algorithm %r; use one of "md5", "sha1", '
                         '"sha256"' % (algo,))
    return hashlib.new(algo.lower())


def normalize_checksum(checksum, algo='sha1'):
    """Return the hexadecimal ``checksum`` lower-cased; ValueError if it is not ``algo``'s."""
    expected_len = _new_hash(algo).digest_size * 2
    value = checksum.strip().lower() if isinstance(checksum, str) else ''
    if len(value) != expected_len or not re.fullmatch('[0-9a-f]+', value):
        raise ValueError('%s checksum must be %s hexadecimal digits, got %r; copy it from '
                         'the output of `%ssum FILE`' % (algo, expected_len, checksum,
                                                   algo.lower()))
    return value


def file_checksum(path, algo='sha1'):
    """Return the lower-case hexadecimal ``algo`` digest of the file ``path``."""
    digest = _new_hash(algo)
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(CHUNK_SIZE), b''):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path, checksum, algo='sha1'):
    """Tell whether ``path`` is an existing file whose ``algo`` digest equals ``checksum``."""
    expected = normalize_checksum(checksum, algo)
    return os.path.isfile(path) and file_checksum(path, algo) == expected


@contextlib.contextmanager
def file_lock(path, timeout=3600.0, poll_interval=0.1):
    """Hold an exclusive inter-process lock on the file ``path + '.lock'``, removed on release.

    ``timeout`` is in seconds (``None`` waits forever); TimeoutError when it runs out.
    """
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout >= 0):
        raise ValueError('timeout must be a number of seconds >= 0 or None, got %r'
                         % (timeout,))
    lock_path = os.path.abspath(os.path.expanduser(path)) + '.lock'
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    lock = portalocker.TemporaryFileLock(lock_path, check_interval=poll_interval)
    try:
        lock.acquire(timeout=0, fail_when_locked=True)
    except portalocker.AlreadyLocked:
        logger.info('waiting for another process holding %s', lock_path)
        try:
            lock.acquire(timeout=math.inf if timeout is None else timeout,
                         fail_when_locked=False)
        except portalocker.AlreadyLocked:
            raise TimeoutError('could not lock %s within %s s: another process is still working '
                               'on this file; wait for it to finish and run again'
                               % (lock_path, timeout)) from None
    try:
        yield lock_path
    finally:
        lock.release()


def _source_url(url):
    """Return ``url`` as a URL urllib opens (a plain path becomes ``file://``)."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError('url must be a non-empty string (http://, https://, file:// or a '
                         'local path), got %r' % (url,))
    scheme = urllib.parse.urlparse(url).scheme.lower()
    if scheme == '':
        return pathlib.Path(os.path.abspath(os.path.expanduser(url))).as_uri()
    if scheme not in ('http', 'https', 'file'):
        raise ValueError('unsupported URL scheme %r in %s; use http://, https://, file:// '
                         'or a local path' % (scheme, url))
    return url


def _open(url, offset, validator, timeout):
    """Open ``url`` from byte ``offset`` on; return ``(response, offset, total)``.

    The offset returned is 0 when the server sends the whole file instead. ``validator`` (the
    first answer's ETag or Last-Modified) makes a server whose file changed send it whole.
    """
    headers = {'User-Agent': 'gluoncv-gan-downloader'}
    if offset:
        headers['Range'] = 'bytes=%s-' % (offset,)
        if validator:
            headers['If-Range'] = validator
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                          timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()  # its body holds the connection open
        kind = _Transient if err.code in _RETRY_STATUS else DownloadError
        raise kind('cannot download %s: HTTP error %s %s' % (url, err.code, err.reason)) \
            from err
    except urllib.error.URLError as err:
        kind = DownloadError if url.startswith('file:') else _Transient
        raise kind('cannot download %s: %s; check the URL and your network connection'
                   % (url, err.reason)) from err
    except (OSError, http.client.HTTPException) as err:
        raise _Transient('cannot download %s: %s' % (url, err)) from err
    content_range = response.headers.get('Content-Range') or ''
    if not (response.status == 206 and content_range.startswith('bytes %s-' % (offset,))):
        offset = 0
    length = response.headers.get('Content-Length') or ''
    return response, offset, offset + int(length) if length.strip().isdigit() else None


def _copy(response, partial, offset, total, url, progress):
    """Append ``response`` to ``partial`` (rewritten when ``offset`` is 0); check the length."""
    got = offset
    with tqdm(total=total, initial=offset, unit='B', unit_scale=True, unit_divisor=1024,
              desc=os.path.basename(urllib.parse.urlparse(url).path) or url,
              disable=not progress, leave=False) as bar:
        try:
            with response, open(partial, 'ab' if offset else 'wb') as out:
                for chunk in iter(lambda: response.read(CHUNK_SIZE), b''):
                    out.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as err:
            if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise _Transient('interrupted download: got %s of %s bytes from %s (%s); run '
                             'again to retry' % (got, '?' if total is None else total,
                                                 url, err)) from err
    if total is not None and got != total:
        raise _Transient('interrupted download: got %s of %s bytes from %s; run again to '
                         'retry' % (got, total, url))


def _fetch(url, path, checksum, algo, progress, timeout, retries, backoff):
    """Download ``url`` to ``path`` through a verified temporary file, retrying and resuming."""
    validator = None
    with atomic_path(path) as partial:
        for attempt in range(retries + 1):
            try:
                response, offset, total = _open(url, os.path.getsize(partial), validator,
                                                timeout)
                if not offset:
                    headers = response.headers
                    validator = headers.get('ETag') or headers.get('Last-Modified')
                _copy(response, partial, offset, total, url, progress)
                break
            except _Transient as err:
                if attempt == retries:
                    raise
                wait = backoff * 2 ** attempt
                logger.warning('attempt %d of %d failed (%s); trying again in %.1f s',
                               attempt + 1, retries + 1, err, wait)
                time.sleep(wait)
        actual = checksum and file_checksum(partial, algo)
        if actual != checksum:
            raise DownloadError('checksum mismatch for %s: expected %s %s, got %s; the file was '
                                'discarded. Check the URL and the checksum, then run again'
                                % (url, algo, checksum, actual))


def keep_if_valid(path, checksum=None, algo='sha1'):
    """Tell whether the file ``path`` exists and matches ``checksum``; delete it if it does not.

    Without a checksum an existing file is kept as it is.
    """
    if not os.path.exists(path):
        return False
    if checksum is None or file_checksum(path, algo) == normalize_checksum(checksum, algo):
        logger.info('%s exists and %s; skipping download', path,
                    'no checksum was given' if checksum is None else 'matches its checksum')
        return True
    logger.warning('%s does not match the expected %s %s (corrupt or stale); replacing it',
                   path, algo, checksum)
    os.remove(path)
    return False


def _check_arguments(path, timeout, retries, backoff):
    """Return the absolute destination path; refuse a folder and bad numbers."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise ValueError('path must be the destination file name, got %r' % (path,))
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if os.path.isdir(path):
        raise ValueError('path %s is a folder; pass the full destination file name, e.g. '
                         '%s' % (path, os.path.join(path, 'file.tgz')))
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError('timeout must be a number of seconds > 0, got %r' % (timeout,))
    if not (isinstance(backoff, (int, float)) and backoff >= 0):
        raise ValueError('backoff must be a number of seconds >= 0, got %r' % (backoff,))
    if not (isinstance(retries, int) and retries >= 0):
        raise ValueError('retries must be a whole number >= 0, got %r' % (retries,))
    return path


def download(url, path, checksum=None, algo='sha1', overwrite=False, progress=True, timeout=60,
             lock_timeout=3600.0, retries=None, backoff=None):
    """Download ``url`` to the file ``path``, verifying it before it appears there.

    Parameters
    ----------
    url : str
        ``http://``, ``https://`` or ``file://`` URL, or a local path.
    path : str
        Destination file name (not a folder); its folder is created if needed.
    checksum : str, optional
        Expected hexadecimal digest. An existing file that does not match is downloaded again.
    algo : str, default 'sha1'
        Hash algorithm of ``checksum``, e.g. ``'md5'``.
    overwrite : bool, default False
        Download even if ``path`` exists and is valid.
    progress : bool, default True
        Show a progress bar on stderr.
    timeout : float, default 60
        Network timeout in seconds for connecting and for each read.
    lock_timeout : float or None, default 3600.0
        Seconds to wait for another process downloading ``path``.
    retries : int, optional
        Further attempts after a transient failure, each resuming; default :data:`RETRIES`.
    backoff : float, optional
        Seconds before the first retry, then doubled; default :data:`BACKOFF`.

    Returns
    -------
    str
        Absolute path of the downloaded file.

    Raises
    ------
    ValueError
        A malformed URL, destination, checksum or number.
    DownloadError
        An HTTP or connection error, a short transfer or a wrong checksum; nothing is left.
    TimeoutError
        Another process held the download lock longer than ``lock_timeout``.
    """
    retries = RETRIES if retries is None else retries
    backoff = BACKOFF if backoff is None else backoff
    source = _source_url(url)
    path = _check_arguments(path, timeout, retries, backoff)
    if checksum is not None:
        checksum = normalize_checksum(checksum, algo)
    with file_lock(path, timeout=lock_timeout):
        remove_leftover_temps(path)
        if not overwrite and keep_if_valid(path, checksum, algo):
            return path
        logger.info('downloading %s to %s', url, path)
        _fetch(source, path, checksum, algo, progress, timeout, retries, backoff)
    return path
