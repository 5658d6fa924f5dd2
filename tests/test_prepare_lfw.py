"""Tests of ``python -m gluoncv_gan.data.prepare_lfw`` on a tiny LFW-like tarball.

The tarball is served from an HTTP server on 127.0.0.1; nothing touches the network.
"""
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

import cv2
import numpy as np
import pytest

from gluoncv_gan.data import prepare_lfw as plfw
from gluoncv_gan.utils.download import DownloadError
from loopback import LoopbackServer, send_status, send_truncated

PEOPLE = {'Alice_Smith': 2, 'Bob_Jones': 1, 'Carol_White': 3}
N_IMAGES = sum(PEOPLE.values())
WRONG_MD5 = 'f' * 32


# ----------------------------------------------------------------------------
# test archives
# ----------------------------------------------------------------------------
def write_faces(root):
    """Write tiny real JPEGs in the LFW layout under ``root/lfw-deepfunneled``."""
    rng = np.random.RandomState(0)
    for name, count in PEOPLE.items():
        folder = root / 'lfw-deepfunneled' / name
        folder.mkdir(parents=True)
        for i in range(1, count + 1):
            image = rng.randint(0, 256, size=(8, 8, 3)).astype(np.uint8)
            assert cv2.imwrite(str(folder / '{}_{:04d}.jpg'.format(name, i)), image)


class Archive:
    """A tarball on disk with its checksums."""

    def __init__(self, path):
        self.path = path
        self.data = path.read_bytes()
        self.md5 = hashlib.md5(self.data).hexdigest()
        self.sha1 = hashlib.sha1(self.data).hexdigest()


@pytest.fixture(scope='session')
def lfw_archive(tmp_path_factory):
    base = tmp_path_factory.mktemp('lfw_src')
    write_faces(base)
    path = base / 'lfw-deepfunneled.tgz'
    with tarfile.open(path, 'w:gz') as tar:
        tar.add(base / 'lfw-deepfunneled', arcname='lfw-deepfunneled')
    return Archive(path)


def add_bytes(tar, name, data=b'gotcha'):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def add_special(tar, name, kind, linkname=''):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    tar.addfile(info)


def make_bad_archive(good, path, add_bad):
    """Copy the members of the ``good`` archive and append one bad member."""
    with tarfile.open(good.path) as src, tarfile.open(path, 'w:gz') as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        add_bad(dst)
    return Archive(path)


@pytest.fixture
def server(lfw_archive):
    """A loopback HTTP server serving the test archive at /lfw.tgz."""
    with LoopbackServer({'/lfw.tgz': lfw_archive.data}) as srv:
        yield srv


@pytest.fixture
def ddir(tmp_path):
    """The download dir (not created: prepare_lfw must create it)."""
    return tmp_path / 'lfw'


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------
def listing(folder):
    return sorted(os.listdir(folder)) if folder.exists() else []


def assert_complete(ddir):
    """The extracted folder has every image and a marker with the right counts."""
    target = ddir / 'lfw-deepfunneled'
    for name, count in PEOPLE.items():
        jpgs = sorted(p.name for p in (target / name).iterdir())
        assert jpgs == ['{}_{:04d}.jpg'.format(name, i) for i in range(1, count + 1)]
        assert cv2.imread(str(target / name / jpgs[0])).shape == (8, 8, 3)
    marker = json.loads((target / '.complete').read_text())
    assert marker['images'] == N_IMAGES and marker['persons'] == len(PEOPLE)
    return marker


def run(ddir, **kwargs):
    kwargs.setdefault('progress', False)
    return plfw.prepare_lfw(download_dir=str(ddir), **kwargs)


# ----------------------------------------------------------------------------
# downloads and checksums
# ----------------------------------------------------------------------------
@pytest.mark.parametrize('algo', ['md5', 'sha1'])
def test_good_checksum(server, ddir, lfw_archive, capsys, algo):
    path = run(ddir, url=server.url('/lfw.tgz'), **{algo: getattr(lfw_archive, algo)})
    assert path == str(ddir / 'lfw-deepfunneled')
    marker = assert_complete(ddir)
    assert marker['archive_checksum'] == '{}:{}'.format(algo, getattr(lfw_archive, algo))
    assert (ddir / 'lfw-deepfunneled.tgz').read_bytes() == lfw_archive.data
    assert listing(ddir) == ['lfw-deepfunneled', 'lfw-deepfunneled.tgz']  # no temp/lock left
    out = capsys.readouterr().out
    assert '{} images in {} person folders at {}'.format(N_IMAGES, len(PEOPLE), path) in out
    assert 'UNVERIFIED' not in out


def test_wrong_checksum_leaves_nothing(server, ddir, lfw_archive):
    url = server.url('/lfw.tgz')
    with pytest.raises(DownloadError) as info:
        run(ddir, url=url, md5=WRONG_MD5)
    message = str(info.value)
    assert url in message and WRONG_MD5 in message and lfw_archive.md5 in message
    assert listing(ddir) == []


def test_default_url_is_checked_against_official_md5(server, ddir, lfw_archive, monkeypatch):
    monkeypatch.setattr(plfw, 'LFW_URL', server.url('/lfw.tgz'))
    with pytest.raises(DownloadError, match=plfw.LFW_MD5):
        run(ddir)
    assert listing(ddir) == []
    monkeypatch.setattr(plfw, 'LFW_MD5', lfw_archive.md5)
    run(ddir)
    assert_complete(ddir)


def test_mirror_without_checksum_warns(server, ddir, capsys, caplog):
    run(ddir, url=server.url('/lfw.tgz'))
    assert_complete(ddir)
    out = capsys.readouterr().out
    assert 'UNVERIFIED' in out and '--md5' in out and '--sha1' in out
    assert any(r.levelname == 'WARNING' and 'UNVERIFIED' in r.getMessage()
               for r in caplog.records)


def test_interrupted_download(server, ddir, lfw_archive):
    data = lfw_archive.data
    server.routes['/short.tgz'] = send_truncated(data[:len(data) // 2], len(data))
    url = server.url('/short.tgz')
    with pytest.raises(DownloadError) as info:
        run(ddir, url=url, sha1=lfw_archive.sha1)
    assert str(info.value) == ('interrupted download: got {} of {} bytes from {}; run again '
                               'to retry'.format(len(data) // 2, len(data), url))
    assert listing(ddir) == []


@pytest.mark.parametrize('code', [404, 500])
def test_http_error(server, ddir, lfw_archive, code):
    server.routes['/err.tgz'] = send_status(code)
    url = server.url('/err.tgz')
    with pytest.raises(DownloadError, match='HTTP error {}'.format(code)) as info:
        run(ddir, url=url, md5=lfw_archive.md5)
    assert url in str(info.value)
    assert listing(ddir) == []


def test_file_url(ddir, lfw_archive):
    run(ddir, url=lfw_archive.path.as_uri(), sha1=lfw_archive.sha1)
    assert_complete(ddir)
    assert (ddir / 'lfw-deepfunneled.tgz').read_bytes() == lfw_archive.data


def test_stale_wrong_archive_is_replaced(server, ddir, lfw_archive):
    ddir.mkdir()
    (ddir / 'lfw-deepfunneled.tgz').write_bytes(lfw_archive.data[:500])
    run(ddir, url=server.url('/lfw.tgz'), md5=lfw_archive.md5)
    assert server.hits['/lfw.tgz'] == 1
    assert (ddir / 'lfw-deepfunneled.tgz').read_bytes() == lfw_archive.data
    assert_complete(ddir)


def test_default_root_honours_mxnet_home(server, tmp_path, lfw_archive, monkeypatch):
    monkeypatch.setenv('MXNET_HOME', str(tmp_path / 'mxhome'))
    path = plfw.prepare_lfw(url=server.url('/lfw.tgz'), md5=lfw_archive.md5, progress=False)
    assert path == str(tmp_path / 'mxhome' / 'datasets' / 'lfw' / 'lfw-deepfunneled')
    assert_complete(tmp_path / 'mxhome' / 'datasets' / 'lfw')


# ----------------------------------------------------------------------------
# unsafe and wrong archives
# ----------------------------------------------------------------------------
def unsafe_members(outside):
    """``kind -> (member name, words of the reason, function adding the member)``."""
    absolute = str(outside / 'evil.txt')
    symlink = 'lfw-deepfunneled/Alice_Smith/link'
    hardlink = 'lfw-deepfunneled/Alice_Smith/hard'
    device = 'lfw-deepfunneled/Alice_Smith/dev'
    return {
        'dotdot': ('../evil.txt', 'contains a ".." path component',
                   lambda t: add_bytes(t, '../evil.txt')),
        'absolute': (absolute, 'has an absolute path', lambda t: add_bytes(t, absolute)),
        'symlink': (symlink, "is a symbolic link pointing outside the target ('../../../outside')",
                    lambda t: add_special(t, symlink, tarfile.SYMTYPE, '../../../outside')),
        'hardlink': (hardlink, "is a hard link pointing outside the target ('../etc/passwd')",
                     lambda t: add_special(t, hardlink, tarfile.LNKTYPE, '../etc/passwd')),
        'device': (device, 'is a device or FIFO file',
                   lambda t: add_special(t, device, tarfile.CHRTYPE)),
    }


@pytest.mark.parametrize('kind', ['dotdot', 'absolute', 'symlink', 'hardlink', 'device'])
def test_unsafe_member_is_refused(tmp_path, ddir, lfw_archive, kind):
    outside = tmp_path / 'outside'
    name, reason, add_bad = unsafe_members(outside)[kind]
    bad = make_bad_archive(lfw_archive, tmp_path / 'bad.tgz', add_bad)
    with pytest.raises(ValueError) as info:
        run(ddir, archive=str(bad.path), sha1=bad.sha1)
    assert str(info.value) == 'refusing to extract archive {}: member {!r} {}; nothing was ' \
        'extracted'.format(bad.path, name, reason)
    assert listing(ddir) == []  # nothing extracted, not even the good members before it
    assert not (tmp_path / 'evil.txt').exists() and not outside.exists()


def test_wrong_top_folder_is_refused(tmp_path, ddir):
    path = tmp_path / 'lfw.tgz'
    with tarfile.open(path, 'w:gz') as tar:
        add_bytes(tar, 'lfw/Alice_Smith/Alice_Smith_0001.jpg')
    with pytest.raises(ValueError, match="'lfw/Alice_Smith/Alice_Smith_0001.jpg' is not "
                                         "inside the lfw-deepfunneled/ folder"):
        run(ddir, archive=str(path))
    assert listing(ddir) == []


def test_damaged_archive_is_reported(tmp_path, ddir, lfw_archive):
    path = tmp_path / 'cut.tgz'
    path.write_bytes(lfw_archive.data[:len(lfw_archive.data) // 2])
    with pytest.raises(ValueError, match='cannot read archive .*damaged'):
        run(ddir, archive=str(path))
    assert listing(ddir) == []


def test_local_archive_wrong_checksum(ddir, lfw_archive):
    with pytest.raises(ValueError, match='expected md5 {}, got {}'.format(WRONG_MD5,
                                                                          lfw_archive.md5)):
        run(ddir, archive=str(lfw_archive.path), md5=WRONG_MD5)
    assert listing(ddir) == []


# ----------------------------------------------------------------------------
# re-runs, --overwrite, --no-download, interruptions
# ----------------------------------------------------------------------------
def test_rerun_is_idempotent(server, ddir, lfw_archive, capsys):
    run(ddir, url=server.url('/lfw.tgz'), md5=lfw_archive.md5)
    target = ddir / 'lfw-deepfunneled'
    before = {p: p.stat().st_mtime_ns for p in target.rglob('*')}
    inode = target.stat().st_ino
    capsys.readouterr()
    run(ddir, url=server.url('/lfw.tgz'), md5=lfw_archive.md5)
    assert server.hits['/lfw.tgz'] == 1
    assert target.stat().st_ino == inode
    assert {p: p.stat().st_mtime_ns for p in target.rglob('*')} == before
    out = capsys.readouterr().out
    assert 'nothing to do' in out and '{} images'.format(N_IMAGES) in out


def test_overwrite_re_extracts(server, ddir, lfw_archive):
    run(ddir, url=server.url('/lfw.tgz'), md5=lfw_archive.md5)
    junk = ddir / 'lfw-deepfunneled' / 'Alice_Smith' / 'junk.jpg'
    junk.write_bytes(b'x')
    run(ddir, url=server.url('/lfw.tgz'), md5=lfw_archive.md5, overwrite=True)
    assert not junk.exists()
    assert_complete(ddir)
    assert server.hits['/lfw.tgz'] == 1  # the verified archive is reused
    assert listing(ddir) == ['lfw-deepfunneled', 'lfw-deepfunneled.tgz']


def test_failed_overwrite_keeps_old_folder(tmp_path, ddir, lfw_archive):
    run(ddir, archive=str(lfw_archive.path), md5=lfw_archive.md5)
    bad = make_bad_archive(lfw_archive, tmp_path / 'bad.tgz',
                           lambda t: add_bytes(t, '../evil.txt'))
    with pytest.raises(ValueError, match='refusing to extract'):
        run(ddir, archive=str(bad.path), overwrite=True)
    assert_complete(ddir)
    assert listing(ddir) == ['lfw-deepfunneled']


def test_no_download_without_archive(server, ddir):
    with pytest.raises(FileNotFoundError, match='--no-download given but there is no archive '
                                                'at .*pass --archive PATH'):
        run(ddir, url=server.url('/lfw.tgz'), no_download=True)
    assert server.hits['/lfw.tgz'] == 0
    assert not (ddir / 'lfw-deepfunneled').exists()


def test_no_download_with_archive_in_download_dir(server, ddir, lfw_archive):
    ddir.mkdir()
    shutil.copy(lfw_archive.path, ddir / 'lfw-deepfunneled.tgz')
    with pytest.raises(ValueError, match='expected md5 {}'.format(plfw.LFW_MD5)):
        run(ddir, no_download=True)  # no checksum given: the official one applies
    run(ddir, url=server.url('/lfw.tgz'), md5=lfw_archive.md5, no_download=True)
    assert server.hits['/lfw.tgz'] == 0
    assert_complete(ddir)


def test_local_archive_is_read_in_place(ddir, lfw_archive):
    run(ddir, archive=str(lfw_archive.path), sha1=lfw_archive.sha1, no_download=True)
    assert_complete(ddir)
    assert listing(ddir) == ['lfw-deepfunneled']  # not copied


def test_interrupted_extraction_leaves_no_complete_looking_folder(ddir, lfw_archive,
                                                                  monkeypatch):
    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(plfw, '_write_marker', killed)
    with pytest.raises(KeyboardInterrupt):
        run(ddir, archive=str(lfw_archive.path))
    assert listing(ddir) == []


def test_leftovers_of_killed_runs_are_cleaned(ddir, lfw_archive):
    leftover = ddir / '.lfw-deepfunneled.k1ll3d.tmp' / 'lfw-deepfunneled' / 'Alice_Smith'
    leftover.mkdir(parents=True)
    (ddir / 'lfw-deepfunneled' / 'Half_Done').mkdir(parents=True)  # no .complete marker
    run(ddir, archive=str(lfw_archive.path))
    assert listing(ddir) == ['lfw-deepfunneled']
    assert not (ddir / 'lfw-deepfunneled' / 'Half_Done').exists()
    assert_complete(ddir)


@pytest.mark.parametrize('kwargs, error, words', [
    ({'url': 'http://x/a.tgz', 'archive': 'a.tgz'}, ValueError, 'not both'),
    ({'md5': 'a' * 32, 'sha1': 'b' * 40}, ValueError, 'either --md5 or --sha1'),
    ({'md5': 'xyz'}, ValueError, 'md5 checksum must be 32 hexadecimal digits'),
    ({'archive': '/no/such/lfw.tgz'}, FileNotFoundError, 'archive /no/such/lfw.tgz not found'),
])
def test_bad_options(ddir, kwargs, error, words):
    with pytest.raises(error, match=words):
        run(ddir, **kwargs)
    assert listing(ddir) == []


def test_download_dir_that_is_a_file(tmp_path, lfw_archive):
    (tmp_path / 'f').write_text('')
    with pytest.raises(ValueError, match='is a file; pass a folder with --download-dir'):
        run(tmp_path / 'f', archive=str(lfw_archive.path))


# ----------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------
def test_main_success(ddir, lfw_archive, capsys):
    code = plfw.main(['--archive', str(lfw_archive.path), '--sha1', lfw_archive.sha1,
                      '--download-dir', str(ddir), '--no-progress'])
    assert code == 0
    assert '{} images in {} person folders'.format(N_IMAGES, len(PEOPLE)) in \
        capsys.readouterr().out
    assert_complete(ddir)


def test_cli_bad_checksum_exit_code_and_message(ddir, lfw_archive):
    proc = subprocess.run(
        [sys.executable, '-m', 'gluoncv_gan.data.prepare_lfw', '--archive',
         str(lfw_archive.path), '--md5', WRONG_MD5, '--download-dir', str(ddir),
         '--no-progress'], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert 'error: checksum mismatch for archive' in proc.stderr
    assert WRONG_MD5 in proc.stderr and lfw_archive.md5 in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert listing(ddir) == []
