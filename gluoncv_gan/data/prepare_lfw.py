"""Prepare the LFW deep-funneled face dataset (Labeled Faces in the Wild).

Downloads ``lfw-deepfunneled.tgz`` (or uses a local copy with ``--archive``), verifies its
checksum (the official md5, or ``--md5``/``--sha1``; see ``--help``), checks every archive member
is safe, and extracts it to ``{download_dir}/lfw-deepfunneled/<Name>/<Name>_NNNN.jpg`` through a
temporary folder with a ``.complete`` marker. Sources and citation: docs/data.md.
"""
import argparse
import glob
import gzip
import json
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import zlib

from tqdm import tqdm

from ..utils.download import (DownloadError, download, file_checksum, file_lock,
                              normalize_checksum)
from ..utils.fileio import atomic_path
from ..utils.paths import default_dataset_root
from ..utils.command_line import EXIT_ERROR, describe_error, prog

__all__ = ['prepare_lfw', 'main', 'LFW_URL', 'LFW_MD5']

logger = logging.getLogger(__name__)

LFW_URL = 'http://vis-www.cs.umass.edu/lfw/lfw-deepfunneled.tgz'
LFW_MD5 = '68331da3eb755a505a502b5aacb3c201'
ARCHIVE_NAME = 'lfw-deepfunneled.tgz'
FOLDER_NAME = 'lfw-deepfunneled'
MARKER_NAME = '.complete'
TEMP_PREFIX = '.' + FOLDER_NAME + '.'
TEMP_SUFFIX = '.tmp'
IMAGE_EXTENSIONS = ('.jpg', '.jpeg')
_FILTER_ERRORS = getattr(tarfile, 'FilterError', ())
_TAR_READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)

EPILOG = """\
checksums:
  The official URL is verified against its md5 %s.
  For a mirror (--url) or a local tarball (--archive) pass its checksum with
  --md5 or --sha1; without one the archive is used unverified (with a warning).

example (a local re-packed copy, not byte-identical to the official tarball):
  python -m gluoncv_gan.data.prepare_lfw --archive ../shared/data/lfw-deepfunneled.tgz \\
      --sha1 f7dc3f1d2f8529114edf72d041bfdd82596c6761
  (its md5 is 627ca122d6b1de9db368e9e3f7abe772)
""" % LFW_MD5


# ----------------------------------------------------------------------------
# options
# ----------------------------------------------------------------------------
def _user_checksum(md5, sha1):
    """Return ``(algo, hex)`` from the user's ``md5``/``sha1`` options, or ``None``.

    Raises
    ------
    ValueError
        If both are given or one is not a well-formed hex digest.
    """
    if md5 is not None and sha1 is not None:
        raise ValueError('pass either --md5 or --sha1, not both')
    if md5 is not None:
        return 'md5', normalize_checksum(md5, 'md5')
    if sha1 is not None:
        return 'sha1', normalize_checksum(sha1, 'sha1')
    return None


def _check_sources(url, archive, no_download):
    """Reject contradictory source options with a message saying what to pass."""
    if url is not None and archive is not None:
        raise ValueError('pass either --url (a mirror to download) or --archive (a local '
                         'tarball), not both')
    if archive is not None and not os.path.isfile(os.path.expanduser(archive)):
        raise FileNotFoundError('archive %s not found; pass the path of an existing '
                                'lfw-deepfunneled.tgz with --archive' % (archive,))
    if url is not None and no_download:
        logger.info('--no-download given: --url %s is ignored', url)


def _expected_checksum(url, archive, user_checksum):
    """Pick the checksum to verify: the user's, else the official md5 for the official URL."""
    if user_checksum is not None:
        return user_checksum
    if url is None and archive is None:
        return 'md5', LFW_MD5
    return None


def _warn_unverified(source):
    """Warn loudly (log and stdout) that ``source`` is used without a checksum."""
    message = ('WARNING: %s is used UNVERIFIED: no checksum was given. Pass --md5 HEX or '
               '--sha1 HEX (from `md5sum`/`sha1sum` of a trusted copy) to verify it.'
               % (source,))
    logger.warning(message)
    print(message, flush=True)


# ----------------------------------------------------------------------------
# getting the archive
# ----------------------------------------------------------------------------
def _verify_local(path, checksum):
    """Check a local archive against ``checksum`` (``(algo, hex)`` or ``None``).

    Returns
    -------
    str
        ``'algo:hex'`` of the archive (sha1 computed when nothing was given).

    Raises
    ------
    ValueError
        If the archive does not match the expected checksum.
    """
    if checksum is None:
        _warn_unverified(path)
        return 'sha1:' + file_checksum(path, 'sha1')
    algo, expected = checksum
    logger.info('verifying %s checksum of %s', algo, path)
    actual = file_checksum(path, algo)
    if actual != expected:
        raise ValueError('checksum mismatch for archive %s: expected %s %s, got %s; the file '
                         'is damaged or is not the archive you meant. Delete or replace it, or '
                         'pass its correct checksum' % (path, algo, expected, actual))
    return '%s:%s' % (algo, actual)


def _local_archive(download_dir, archive):
    """Return the path of the archive to use without downloading.

    Raises
    ------
    FileNotFoundError
        If no archive is available, saying how to provide one.
    """
    if archive is not None:
        return os.path.abspath(os.path.expanduser(archive))
    path = os.path.join(download_dir, ARCHIVE_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError('--no-download given but there is no archive at %s; copy '
                                '%s there, pass --archive PATH, or drop --no-download'
                                % (path, ARCHIVE_NAME))
    return path


def _download_archive(download_dir, url, checksum, progress):
    """Download the archive to ``download_dir`` (verified when ``checksum`` is given).

    Returns
    -------
    tuple of str
        ``(archive_path, 'algo:hex')``.
    """
    source = url if url is not None else LFW_URL
    path = os.path.join(download_dir, ARCHIVE_NAME)
    if checksum is None:
        _warn_unverified(source)
        download(source, path, progress=progress)
        return path, 'sha1:' + file_checksum(path, 'sha1')
    algo, expected = checksum
    download(source, path, checksum=expected, algo=algo, progress=progress)
    return path, '%s:%s' % (algo, expected)


def _get_archive(download_dir, url, archive, checksum, no_download, progress):
    """Return ``(archive_path, 'algo:hex')`` of a verified (or warned about) archive."""
    if archive is not None or no_download:
        path = _local_archive(download_dir, archive)
        return path, _verify_local(path, checksum)
    return _download_archive(download_dir, url, checksum, progress)


# ----------------------------------------------------------------------------
# archive safety
# ----------------------------------------------------------------------------
def _inside(root, candidate):
    """Tell whether the normalised path ``candidate`` lies inside ``root``."""
    root = os.path.normpath(root)
    candidate = os.path.normpath(candidate)
    return candidate == root or candidate.startswith(root + os.sep)


def _member_problem(member, root):
    """Describe why extracting ``member`` into ``root`` is unsafe, or return ``None``."""
    name = member.name
    if name.startswith(('/', '\\')) or os.path.isabs(name):
        return 'has an absolute path'
    if '..' in name.replace('\\', '/').split('/'):
        return 'contains a ".." path component'
    target = os.path.join(root, name)
    if not _inside(root, target):
        return 'would be written outside the target folder'
    if member.isdev() or member.isfifo():
        return 'is a device or FIFO file'
    if member.issym():
        if os.path.isabs(member.linkname):
            return 'is a symbolic link to the absolute path %r' % (member.linkname,)
        if not _inside(root, os.path.join(os.path.dirname(target), member.linkname)):
            return 'is a symbolic link pointing outside the target (%r)' % (
                member.linkname,)
    elif member.islnk():
        if os.path.isabs(member.linkname) or not _inside(
                root, os.path.join(root, member.linkname)):
            return 'is a hard link pointing outside the target (%r)' % (member.linkname,)
    elif not (member.isfile() or member.isdir()):
        return 'has an unsupported member type'
    return None


def _check_layout(member):
    """Describe why ``member`` is not part of the LFW layout, or return ``None``."""
    name = member.name.replace('\\', '/')
    while name.startswith('./'):
        name = name[2:]
    if member.isdir() and name in ('', '.'):
        return None
    if name.split('/', 1)[0] != FOLDER_NAME:
        return 'is not inside the %s/ folder (is this the LFW deep-funneled archive?)' % (
            FOLDER_NAME,)
    return None


def _checked_members(archive_path, tar, root):
    """Return all members of ``tar`` after checking every one; extract nothing.

    Raises
    ------
    ValueError
        Naming the first unsafe or out-of-layout member.
    """
    members = tar.getmembers()
    if not members:
        raise ValueError('archive %s is empty; it is not the LFW deep-funneled archive'
                         % (archive_path,))
    for member in members:
        problem = _member_problem(member, root) or _check_layout(member)
        if problem:
            raise ValueError('refusing to extract archive %s: member %r %s; nothing was '
                             'extracted' % (archive_path, member.name, problem))
    return members


# ----------------------------------------------------------------------------
# extraction
# ----------------------------------------------------------------------------
def _extract_all(tar, members, dest, progress):
    """Extract the already-checked ``members`` into ``dest``."""
    kwargs = {'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}
    bar = tqdm(members, total=len(members), unit='file', desc='extracting',
               disable=not progress, leave=False)
    try:
        tar.extractall(dest, members=bar, **kwargs)
    finally:
        bar.close()


def _extract_checked(archive_path, dest, progress):
    """Check every member of ``archive_path``, then extract it into ``dest``.

    Raises
    ------
    ValueError
        If a member is unsafe, the layout is wrong, or the archive is damaged.
    """
    logger.info('checking the members of %s', archive_path)
    try:
        with tarfile.open(archive_path, 'r:*') as tar:
            members = _checked_members(archive_path, tar, dest)
            logger.info('extracting %d members to %s', len(members), dest)
            _extract_all(tar, members, dest, progress)
    except _FILTER_ERRORS as err:
        raise ValueError('refusing to extract archive %s: %s; the archive is unsafe'
                         % (archive_path, err)) from err
    except _TAR_READ_ERRORS as err:
        raise ValueError('cannot read archive %s: %s; the file is damaged or not a tar '
                         'archive. Delete it and run again, or pass another --archive'
                         % (archive_path, err)) from err


def _count(folder):
    """Count person folders and images in an LFW folder; return ``(images, persons)``."""
    images = persons = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            persons += 1
            with os.scandir(entry.path) as files:
                images += sum(1 for f in files
                              if f.is_file() and f.name.lower().endswith(IMAGE_EXTENSIONS))
    return images, persons


def _write_marker(folder, images, persons, checksum):
    """Write the ``.complete`` marker (JSON with counts and archive checksum)."""
    record = {'images': images, 'persons': persons, 'archive_checksum': checksum}
    with atomic_path(os.path.join(folder, MARKER_NAME)) as tmp:
        with open(tmp, 'w') as f:
            json.dump(record, f, indent=1)
            f.write('\n')


def _read_marker(folder):
    """Return the marker record of a complete folder, or ``None`` if incomplete."""
    try:
        with open(os.path.join(folder, MARKER_NAME)) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get('images'), int):
        return None
    return record


# ----------------------------------------------------------------------------
# temporary folders and the final swap
# ----------------------------------------------------------------------------
def _make_temp_dir(download_dir):
    """Create a temporary folder in ``download_dir`` that the next run can recognise."""
    return tempfile.mkdtemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=download_dir)


def _remove_leftovers(download_dir):
    """Delete temporary folders left by interrupted earlier runs (hold the lock)."""
    pattern = os.path.join(glob.escape(download_dir), TEMP_PREFIX + '*' + TEMP_SUFFIX)
    for leftover in glob.glob(pattern):
        if os.path.isdir(leftover) and not os.path.islink(leftover):
            logger.info('removing leftover temporary folder %s', leftover)
            shutil.rmtree(leftover, ignore_errors=True)


def _swap_into_place(new_folder, target, download_dir):
    """Move ``new_folder`` to ``target``, replacing an old ``target`` only at the end."""
    if not os.path.lexists(target):
        os.rename(new_folder, target)
        return
    trash = _make_temp_dir(download_dir)
    old = os.path.join(trash, FOLDER_NAME)
    os.rename(target, old)
    try:
        os.rename(new_folder, target)
    except OSError:
        os.rename(old, target)
        shutil.rmtree(trash, ignore_errors=True)
        raise
    shutil.rmtree(trash, ignore_errors=True)


def _extract_to_target(archive_path, checksum, target, download_dir, progress):
    """Extract into a temporary folder, mark it complete, then rename it to ``target``."""
    work = _make_temp_dir(download_dir)
    try:
        _extract_checked(archive_path, work, progress)
        extracted = os.path.join(work, FOLDER_NAME)
        images, persons = _count(extracted)
        if images == 0:
            raise ValueError('archive %s has no images under %s/; it is not the LFW '
                             'deep-funneled archive' % (archive_path, FOLDER_NAME))
        _write_marker(extracted, images, persons, checksum)
        _swap_into_place(extracted, target, download_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ----------------------------------------------------------------------------
# reporting
# ----------------------------------------------------------------------------
def _report(target, record):
    """Print the number of images and person folders found in ``target``."""
    images, persons = _count(target)
    if record is not None and record.get('images') != images:
        logger.warning('%s has %d images but %d were extracted; it was modified since. Pass '
                       '--overwrite to extract it again', target, images, record.get('images'))
    print('LFW deep-funneled: %s images in %s person folders at %s' % (
        images, persons, target), flush=True)


# ----------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------
def _resolve_download_dir(download_dir):
    """Return the absolute download folder, creating it; refuse a file."""
    folder = download_dir if download_dir is not None else default_dataset_root('lfw')
    folder = os.path.abspath(os.path.expanduser(folder))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError('download dir %s is a file; pass a folder with --download-dir'
                         % (folder,))
    os.makedirs(folder, exist_ok=True)
    return folder


def prepare_lfw(download_dir=None, url=None, archive=None, md5=None, sha1=None,
                overwrite=False, no_download=False, progress=True):
    """Download (or take a local copy of) LFW deep-funneled and extract it safely.

    Parameters
    ----------
    download_dir : str, optional
        Folder for the archive and the extracted data. Default
        ``~/.mxnet/datasets/lfw`` (honours ``$MXNET_HOME``).
    url : str, optional
        Mirror URL to download instead of the official one. Verified against
        ``md5``/``sha1`` when given, otherwise used with a warning.
    archive : str, optional
        Local tarball to extract in place (not copied); excludes ``url``.
    md5, sha1 : str, optional
        Expected checksum of the mirror or local archive (give at most one).
    overwrite : bool, default False
        Extract again even if a complete folder exists; the old folder is
        replaced only once the new one is complete. A valid archive is reused.
    no_download : bool, default False
        Never download: use ``archive`` or ``{download_dir}/lfw-deepfunneled.tgz``.
    progress : bool, default True
        Show progress bars.

    Returns
    -------
    str
        Path of the ``{download_dir}/lfw-deepfunneled`` folder.

    Raises
    ------
    ValueError
        On contradictory or malformed options, a checksum mismatch of a local
        archive, or an unsafe, damaged or non-LFW archive.
    FileNotFoundError
        When ``archive`` does not exist, or ``no_download`` is set and no
        archive is available.
    DownloadError
        When the download fails or does not match its checksum.
    """
    user_checksum = _user_checksum(md5, sha1)
    _check_sources(url, archive, no_download)
    download_dir = _resolve_download_dir(download_dir)
    target = os.path.join(download_dir, FOLDER_NAME)
    with file_lock(target):
        _remove_leftovers(download_dir)
        record = _read_marker(target)
        if record is not None and not overwrite:
            logger.info('%s is already complete; nothing to do (pass --overwrite to extract '
                        'again)', target)
            print('Already prepared, nothing to do.', flush=True)
            _report(target, record)
            return target
        if os.path.lexists(target) and record is None:
            logger.warning('%s exists but is incomplete; it will be replaced', target)
        checksum = _expected_checksum(url, archive, user_checksum)
        archive_path, archive_checksum = _get_archive(download_dir, url, archive, checksum,
                                                      no_download, progress)
        _extract_to_target(archive_path, archive_checksum, target, download_dir, progress)
    _report(target, _read_marker(target))
    return target


def parse_args(argv=None):
    """Parse command-line options (hyphenated flags, GluonCV style).

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    argparse.Namespace
    """
    parser = argparse.ArgumentParser(
        prog='python -m gluoncv_gan.data.prepare_lfw',
        description='Download and extract LFW deep-funneled (Labeled Faces in the Wild) to '
                    '{download-dir}/lfw-deepfunneled.',
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.prog = prog('gluoncv_gan.data.prepare_lfw')  # the command's real name in usage lines
    parser.add_argument('--download-dir', default=None,
                        help='folder for the archive and the data (default: '
                             '$MXNET_HOME/datasets/lfw, i.e. ~/.mxnet/datasets/lfw)')
    parser.add_argument('--overwrite', action='store_true',
                        help='extract again even if a complete folder exists')
    parser.add_argument('--no-download', action='store_true',
                        help='do not download; use --archive or the archive in --download-dir')
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--url', default=None, help='mirror URL of lfw-deepfunneled.tgz')
    source.add_argument('--archive', default=None,
                        help='local lfw-deepfunneled.tgz to extract (read in place)')
    digest = parser.add_mutually_exclusive_group()
    digest.add_argument('--md5', default=None, help='md5 of the mirror or local archive')
    digest.add_argument('--sha1', default=None, help='sha1 of the mirror or local archive')
    parser.add_argument('--no-progress', action='store_true', help='hide progress bars')
    return parser.parse_args(argv)


def main(argv=None):
    """Run the command line; return the process exit code.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 2 on an error (one line on stderr saying what to do, no traceback),
        130 when interrupted.
    """
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s: %(message)s')
    try:
        prepare_lfw(download_dir=args.download_dir, url=args.url, archive=args.archive,
                    md5=args.md5, sha1=args.sha1, overwrite=args.overwrite,
                    no_download=args.no_download, progress=not args.no_progress)
    except (DownloadError, ValueError, OSError) as err:
        print('error: %s' % ' '.join(describe_error(err).split()), file=sys.stderr, flush=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print('interrupted; nothing incomplete was kept, run again to resume',
              file=sys.stderr, flush=True)
        return 130
    return 0


if __name__ == '__main__':
    sys.exit(main())
