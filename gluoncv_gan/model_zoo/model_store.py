"""Published weights of gluoncv-gan's model zoo, verified by sha1 wherever they come from.

A published version of model ``name`` is ``{name}-{sha1[:8]}.params`` (the file's own sha1),
distributed as ``{name}-{sha1[:8]}.zip``. ``get_model_file`` looks in the cache, then in the
package's ``weights/`` folder, then downloads from ``$GLUONCV_GAN_REPO``, one process at a time;
see docs/model_zoo.md#the-model-store.
"""
import glob
import logging
import os
import re
import shutil
import tempfile
import zipfile
import zlib

from ..utils.download import DownloadError, download, file_checksum, file_lock, keep_if_valid
from ..utils.paths import default_model_root
from .registry import list_models

__all__ = ['get_model_file', 'purge', 'pretrained_model_list', 'short_hash',
           'PretrainedNotAvailable', 'REPO_ENV', 'SHIPPED_DIR']

logger = logging.getLogger(__name__)

REPO_ENV = 'GLUONCV_GAN_REPO'
_PARAMS_NAME = re.compile(r'^(.+)-[0-9a-f]{8}\.params$')
SHIPPED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'weights')

# (sha1 of the .params file, name); for a name listed more than once the last is the default
_model_sha1_versions = [
    ('7c1a217dfa6345ff58d4b3e7e7c51c8f7df8264a', 'dcgan_lfw'),
    ('92447550cef76be127ca97821e3341754c13ac20', 'dcgan_lfw'),
    ('0dac2a3abc5a17bb5c586e583228253d75463552', 'sngan_lfw'),
    ('05bc1e728a0e0ef8bf559307bae851130d63bae9', 'lsgan_lfw'),
    ('d21d5ace850db304f630f535b1ef4c121760d02a', 'wgan_lfw'),
    ('4f31992cb49c367fdbf2bce217fa91dfbc06689e', 'dcgan_lfw_128'),
]


class PretrainedNotAvailable(ValueError):
    """The requested model (or version) has no published weights."""


def _versions(name):
    return [sha1 for sha1, model in _model_sha1_versions if model == name]


def pretrained_model_list():
    """Names of the models that have published weights."""
    return sorted({name for _, name in _model_sha1_versions})


def _resolve_sha1(name, tag=None):
    versions = _versions(name)
    if not versions:
        published = ', '.join(pretrained_model_list()) or 'none yet'
        raise PretrainedNotAvailable(
            'No pretrained weights are published for %r (published: %s). Build it with '
            'pretrained=False and train it with `python -m gluoncv_gan.train`, or load your own '
            'weights with net.load_parameters(path).' % (name, published))
    if tag is None or tag is True:
        return versions[-1]
    matches = [sha1 for sha1 in versions if sha1.startswith(str(tag).lower())]
    if not matches:
        raise PretrainedNotAvailable('%r has no published version tagged %r (versions: %s)'
                                     % (name, tag, ', '.join(v[:8] for v in versions)))
    return matches[-1]


def short_hash(name, tag=None):
    """First 8 hex digits of the sha1 of ``name``'s published weights (version ``tag``)."""
    return _resolve_sha1(name, tag)[:8]


def _extract_params(zip_path, member, scratch, url):
    """Unpack ``member`` of a zip into the folder ``scratch``; return the unpacked file's path.

    Raises
    ------
    DownloadError
        The zip is not a zip, lacks ``member`` or its data is corrupt.
    """
    out_path = os.path.join(scratch, member)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            if member not in archive.namelist():
                raise DownloadError('%s does not contain %s (it holds: %s); the mirror serves '
                                    'a wrong archive: check $%s'
                                    % (url, member, ', '.join(archive.namelist()) or 'nothing',
                                       REPO_ENV))
            with open(out_path, 'wb') as out, archive.open(member) as src:
                shutil.copyfileobj(src, out)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise DownloadError('%s is not a valid zip file (%s): the download may be truncated '
                            'or the mirror broken; run again to retry' % (url, err)) from None
    return out_path


def _scratch_prefix(target):
    return '.download-%s-' % os.path.basename(target)


def _remove_stale_scratch(target):
    """Remove scratch folders of ``target`` left by killed earlier runs (hold its lock)."""
    folder = os.path.dirname(target)
    for stale in glob.glob(os.path.join(glob.escape(folder),
                                        glob.escape(_scratch_prefix(target)) + '*')):
        logger.info('Removing leftover temporary folder %s', stale)
        shutil.rmtree(stale, ignore_errors=True)


def _zip_source(file_name, sha1, root):
    """Where the zip of ``file_name`` comes from: ``(path or URL, what to do if it is bad)``."""
    shipped = os.path.join(SHIPPED_DIR, file_name + '.zip')
    if os.path.isfile(shipped):
        return shipped, 'The copy shipped with this installation is damaged: reinstall ' \
                        'gluoncv-gan.'
    repo = os.environ.get(REPO_ENV)
    if not repo:
        raise DownloadError(
            '%s.zip (sha1 %s) is neither in the cache %s nor shipped with this '
            'installation: install gluoncv-gan from a clone of its repository (which holds '
            'every published zip in gluoncv_gan/model_zoo/weights/), or set $%s to a '
            'folder or server that serves gluon/models/%s.zip (file:///path or http(s)://)'
            % (file_name, sha1, root, REPO_ENV, file_name))
    return ('%s/gluon/models/%s.zip' % (repo.rstrip('/'), file_name),
            'Run again; if it persists the mirror $%s=%s serves other weights.' % (REPO_ENV, repo))


def _fetch_zip(source, hint, target, sha1, progress):
    """Unpack ``target``'s file from the zip at ``source`` (a path or URL) and verify it.

    Everything happens in a scratch folder beside ``target`` that is removed whatever
    happens; only a file with the right sha1 is renamed to ``target``.
    """
    member = os.path.basename(target)
    _remove_stale_scratch(target)
    with tempfile.TemporaryDirectory(prefix=_scratch_prefix(target),
                                     dir=os.path.dirname(target)) as scratch:
        local = source
        if '://' in source:
            logger.info('Downloading %s from %s...', member, source)
            local = download(source, os.path.join(scratch, member + '.zip'), progress=progress)
        unpacked = _extract_params(local, member, scratch, source)
        actual = file_checksum(unpacked, 'sha1')
        if actual != sha1:
            raise DownloadError('sha1 mismatch for %s: expected %s, got %s; nothing was written '
                                'to the cache. %s' % (source, sha1, actual, hint))
        os.replace(unpacked, target)


def get_model_file(name, tag=None, root=None, progress=True):
    """Path of the verified weights of ``name`` in the cache, fetching them if needed.

    Parameters
    ----------
    name : str
        Model name, e.g. 'dcgan_lfw'.
    tag : str, bool or None
        A version's hash prefix; None or True for the default version.
    root : str or None
        Cache folder; default ``$MXNET_HOME/models``.
    progress : bool
        Show a progress bar while downloading.

    Returns
    -------
    str
        Path of ``{name}-{sha1[:8]}.params``.

    Raises
    ------
    PretrainedNotAvailable
        No published weights for that name or tag.
    DownloadError
        The weights could not be fetched or failed verification (nothing is left in the cache).
    """
    sha1 = _resolve_sha1(name, tag)
    file_name = '%s-%s' % (name, sha1[:8])
    root = os.path.expanduser(root or default_model_root())
    target = os.path.join(root, file_name + '.params')
    with file_lock(target):
        if not keep_if_valid(target, sha1, 'sha1'):
            source, hint = _zip_source(file_name, sha1, root)
            _fetch_zip(source, hint, target, sha1, progress)
    return target


def purge(root=None):
    """Remove this plugin's published weights from the cache ``root``.

    Only files named ``{name}-{8 hex digits}.params`` after a gluoncv-gan model are removed:
    the cache is shared with GluonCV, whose weights (e.g. ``resnet50_v1b-0ecdba34.params``)
    stay.

    Parameters
    ----------
    root : str or None
        Cache folder; default ``$MXNET_HOME/models``.

    Returns
    -------
    list of str
        Names of the removed files, sorted.
    """
    root = os.path.expanduser(root or default_model_root())
    if not os.path.isdir(root):
        return []
    names = {name for _, name in _model_sha1_versions} | set(list_models())
    removed = []
    for file_name in sorted(os.listdir(root)):
        match = _PARAMS_NAME.match(file_name)
        if match and match.group(1) in names and os.path.isfile(os.path.join(root, file_name)):
            os.remove(os.path.join(root, file_name))
            removed.append(file_name)
    return removed
