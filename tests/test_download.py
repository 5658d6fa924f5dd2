"""Tests of gluoncv_gan.utils.download against a local HTTP server on 127.0.0.1."""
import hashlib
import os
import select
import socket
import subprocess
import sys
import threading

import pytest

from gluoncv_gan.utils import download as download_module
from gluoncv_gan.utils.download import (DownloadError, check_file, download, file_checksum,
                                        file_lock)
from loopback import LoopbackServer, fail_first, send_ranges, send_status, send_truncated

PAYLOAD = bytes(range(256)) * 800  # 200 KB, deterministic
PAYLOAD_SHA1 = hashlib.sha1(PAYLOAD).hexdigest()
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()
WRONG_SHA1 = '0' * 40


@pytest.fixture
def server():
    """A loopback HTTP server serving PAYLOAD at /data.bin."""
    with LoopbackServer({'/data.bin': PAYLOAD}) as srv:
        yield srv


@pytest.fixture
def dest(tmp_path):
    """An empty destination folder; tests check it stays clean."""
    folder = tmp_path / 'dl'
    folder.mkdir()
    return folder


# ----------------------------------------------------------------------------
# checksums
# ----------------------------------------------------------------------------
def test_file_checksum_matches_hashlib(tmp_path):
    path = tmp_path / 'f.bin'
    path.write_bytes(PAYLOAD * 8)  # > 1 MB, so several chunks
    assert file_checksum(str(path)) == hashlib.sha1(PAYLOAD * 8).hexdigest()
    assert file_checksum(str(path), 'md5') == hashlib.md5(PAYLOAD * 8).hexdigest()


def test_check_file(tmp_path):
    path = tmp_path / 'f.bin'
    path.write_bytes(PAYLOAD)
    assert check_file(str(path), PAYLOAD_SHA1, 'sha1')
    assert check_file(str(path), PAYLOAD_MD5.upper(), 'md5')
    assert not check_file(str(path), WRONG_SHA1, 'sha1')
    assert not check_file(str(tmp_path / 'missing'), PAYLOAD_SHA1, 'sha1')


@pytest.mark.parametrize('checksum, algo, words', [
    ('abc', 'sha1', '40 hexadecimal digits'),
    ('z' * 40, 'sha1', '40 hexadecimal digits'),
    (PAYLOAD_SHA1, 'md5', '32 hexadecimal digits'),
    (PAYLOAD_SHA1, 'crc99', 'unknown checksum algorithm'),
])
def test_malformed_checksum_is_refused(server, dest, checksum, algo, words):
    with pytest.raises(ValueError, match=words):
        download(server.url('/data.bin'), str(dest / 'x'), checksum=checksum, algo=algo)
    assert server.hits['/data.bin'] == 0
    assert os.listdir(dest) == []


# ----------------------------------------------------------------------------
# successful downloads
# ----------------------------------------------------------------------------
@pytest.mark.parametrize('algo, checksum', [('sha1', PAYLOAD_SHA1), ('md5', PAYLOAD_MD5)])
def test_http_download_with_good_checksum(server, dest, algo, checksum):
    path = download(server.url('/data.bin'), str(dest / 'data.bin'), checksum=checksum,
                    algo=algo, progress=False)
    assert path == str(dest / 'data.bin')
    assert (dest / 'data.bin').read_bytes() == PAYLOAD
    assert os.listdir(dest) == ['data.bin']  # no temp or lock file left


@pytest.mark.parametrize('as_uri', [True, False], ids=['file-url', 'plain-path'])
def test_local_source(tmp_path, dest, as_uri):
    source = tmp_path / 'source.bin'
    source.write_bytes(PAYLOAD)
    url = source.as_uri() if as_uri else str(source)
    download(url, str(dest / 'copy.bin'), checksum=PAYLOAD_SHA1, progress=False)
    assert (dest / 'copy.bin').read_bytes() == PAYLOAD
    assert os.listdir(dest) == ['copy.bin']


def test_creates_missing_destination_folder(server, tmp_path):
    path = tmp_path / 'a' / 'b' / 'data.bin'
    download(server.url('/data.bin'), str(path), checksum=PAYLOAD_SHA1, progress=False)
    assert path.read_bytes() == PAYLOAD


def test_valid_existing_file_is_not_downloaded_again(server, dest):
    for _ in range(2):
        download(server.url('/data.bin'), str(dest / 'd'), checksum=PAYLOAD_SHA1,
                 progress=False)
    assert server.hits['/data.bin'] == 1


def test_existing_file_without_checksum_is_kept(server, dest):
    (dest / 'd').write_bytes(b'user data')
    download(server.url('/data.bin'), str(dest / 'd'), progress=False)
    assert server.hits['/data.bin'] == 0
    assert (dest / 'd').read_bytes() == b'user data'


def test_overwrite_downloads_again(server, dest):
    for _ in range(2):
        download(server.url('/data.bin'), str(dest / 'd'), checksum=PAYLOAD_SHA1,
                 overwrite=True, progress=False)
    assert server.hits['/data.bin'] == 2
    assert (dest / 'd').read_bytes() == PAYLOAD


def test_stale_wrong_file_is_replaced(server, dest):
    (dest / 'd').write_bytes(PAYLOAD[:1000])  # e.g. a truncated earlier copy
    download(server.url('/data.bin'), str(dest / 'd'), checksum=PAYLOAD_SHA1, progress=False)
    assert server.hits['/data.bin'] == 1
    assert (dest / 'd').read_bytes() == PAYLOAD


def test_stale_wrong_file_is_not_kept_when_download_fails(server, dest):
    (dest / 'd').write_bytes(b'corrupt')
    with pytest.raises(DownloadError):
        download(server.url('/missing'), str(dest / 'd'), checksum=PAYLOAD_SHA1,
                 progress=False)
    assert os.listdir(dest) == []


def test_leftover_temp_file_is_removed(server, dest):
    (dest / '.d.abc123.tmp').write_bytes(b'half a download')
    download(server.url('/data.bin'), str(dest / 'd'), checksum=PAYLOAD_SHA1, progress=False)
    assert sorted(os.listdir(dest)) == ['d']


# ----------------------------------------------------------------------------
# failures
# ----------------------------------------------------------------------------
def test_wrong_checksum_names_url_and_both_hashes(server, dest):
    url = server.url('/data.bin')
    with pytest.raises(DownloadError) as info:
        download(url, str(dest / 'd'), checksum=WRONG_SHA1, progress=False)
    message = str(info.value)
    assert url in message and WRONG_SHA1 in message and PAYLOAD_SHA1 in message
    assert os.listdir(dest) == []


def test_interrupted_download(server, dest):
    server.routes['/short.bin'] = send_truncated(PAYLOAD[:len(PAYLOAD) // 2],
                                                 len(PAYLOAD) + 1000)
    url = server.url('/short.bin')
    with pytest.raises(DownloadError) as info:
        download(url, str(dest / 'd'), progress=False, retries=2)
    expected = 'interrupted download: got {} of {} bytes from {}; run again to retry'.format(
        len(PAYLOAD) // 2, len(PAYLOAD) + 1000, url)
    assert str(info.value) == expected
    assert server.hits['/short.bin'] == 3  # the first attempt and two retries
    assert os.listdir(dest) == []


@pytest.mark.parametrize('code, attempts', [(404, 1), (500, 3)])
def test_http_error(server, dest, code, attempts):
    server.routes['/err'] = send_status(code)
    url = server.url('/err')
    with pytest.raises(DownloadError, match='HTTP error {}'.format(code)) as info:
        download(url, str(dest / 'd'), progress=False, retries=2)
    assert url in str(info.value)
    assert server.hits['/err'] == attempts  # a 5xx is retried, a 404 is not
    assert os.listdir(dest) == []


# ----------------------------------------------------------------------------
# retries and resume
# ----------------------------------------------------------------------------
@pytest.fixture
def waits(monkeypatch):
    """The backoff pauses download() takes, recorded instead of slept."""
    recorded = []
    monkeypatch.setattr(download_module.time, 'sleep', recorded.append)
    return recorded


def test_unavailable_server_is_retried_with_doubling_backoff(server, dest, waits):
    server.routes['/busy.bin'] = fail_first(2, PAYLOAD, code=503)
    download(server.url('/busy.bin'), str(dest / 'd'), checksum=PAYLOAD_SHA1, progress=False,
             retries=3, backoff=0.5)
    assert server.hits['/busy.bin'] == 3
    assert waits == [0.5, 1.0]
    assert (dest / 'd').read_bytes() == PAYLOAD
    assert os.listdir(dest) == ['d']


def test_retries_are_bounded(server, dest, waits):
    server.routes['/busy.bin'] = fail_first(10, PAYLOAD, code=503)
    with pytest.raises(DownloadError, match='HTTP error 503'):
        download(server.url('/busy.bin'), str(dest / 'd'), progress=False, retries=2,
                 backoff=0.25)
    assert server.hits['/busy.bin'] == 3
    assert waits == [0.25, 0.5]
    assert os.listdir(dest) == []


def test_dropped_connection_resumes_with_a_range_request(server, dest):
    cut = len(PAYLOAD) // 3
    server.routes['/drop.bin'] = send_ranges(PAYLOAD, drop_after=cut, etag='"v1"')
    download(server.url('/drop.bin'), str(dest / 'd'), checksum=PAYLOAD_SHA1, progress=False)
    first, second = server.requests
    assert 'Range' not in first.headers
    assert second.headers['Range'] == 'bytes={}-'.format(cut)
    assert second.headers['If-Range'] == '"v1"'
    assert (dest / 'd').read_bytes() == PAYLOAD
    assert os.listdir(dest) == ['d']


def test_server_ignoring_range_is_downloaded_again_from_the_start(server, dest):
    cut = len(PAYLOAD) // 3
    server.routes['/drop.bin'] = send_ranges(PAYLOAD, drop_after=cut, honour_range=False)
    download(server.url('/drop.bin'), str(dest / 'd'), progress=False)
    assert server.requests[1].headers['Range'] == 'bytes={}-'.format(cut)
    assert (dest / 'd').read_bytes() == PAYLOAD  # not the first third twice
    assert os.listdir(dest) == ['d']


def test_range_answer_for_another_offset_is_not_appended(server, dest):
    cut = len(PAYLOAD) // 3

    def wrong_range(handler):  # a 206 that starts at byte 0, whatever was asked
        handler.send_response(206)
        handler.send_header('Content-Range', 'bytes 0-{}/{}'.format(len(PAYLOAD) - 1,
                                                                      len(PAYLOAD)))
        handler.send_header('Content-Length', str(len(PAYLOAD)))
        handler.end_headers()
        handler.wfile.write(PAYLOAD)

    drop_once = send_ranges(PAYLOAD, drop_after=cut)
    routes = [drop_once, wrong_range]
    server.routes['/odd.bin'] = lambda handler: routes.pop(0)(handler)
    download(server.url('/odd.bin'), str(dest / 'd'), checksum=PAYLOAD_SHA1, progress=False)
    assert (dest / 'd').read_bytes() == PAYLOAD


def test_connection_refused(dest):
    with socket.socket() as sock:  # find a port nobody listens on
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    url = 'http://127.0.0.1:{}/x'.format(port)
    with pytest.raises(DownloadError, match='cannot download') as info:
        download(url, str(dest / 'd'), progress=False, timeout=5, retries=1)
    assert url in str(info.value)
    assert os.listdir(dest) == []


def test_missing_local_file(tmp_path, dest):
    with pytest.raises(DownloadError, match='cannot download'):
        download(str(tmp_path / 'nope.bin'), str(dest / 'd'), progress=False)
    assert os.listdir(dest) == []


@pytest.mark.parametrize('url, words', [
    ('ftp://example.com/x', "unsupported URL scheme 'ftp'"),
    ('', 'url must be a non-empty string'),
])
def test_bad_url_is_refused(dest, url, words):
    with pytest.raises(ValueError, match=words):
        download(url, str(dest / 'd'))


def test_destination_folder_is_refused(server, dest):
    with pytest.raises(ValueError, match='is a folder; pass the full destination file name'):
        download(server.url('/data.bin'), str(dest))


# ----------------------------------------------------------------------------
# locking and concurrency
# ----------------------------------------------------------------------------
# holds the lock until a line arrives on its stdin: the test, not a sleep, decides how long
HOLD_LOCK = """
import sys
from gluoncv_gan.utils.download import file_lock
with file_lock(sys.argv[1]):
    print('locked', flush=True)
    sys.stdin.readline()
"""

DOWNLOAD = """
import logging, sys
logging.basicConfig(level=logging.INFO, format='%(message)s')
from gluoncv_gan.utils.download import download
print('ready', flush=True)
sys.stdin.readline()  # start together with the other process
download(sys.argv[1], sys.argv[2], checksum=sys.argv[3], progress=False)
"""


def _line_of(proc, timeout=60, stream='stdout'):
    """The child's next line on ``stream``, failing the test (and killing the child) after
    ``timeout``."""
    pipe = getattr(proc, stream)
    ready, _, _ = select.select([pipe], [], [], timeout)
    if not ready:
        proc.kill()
        pytest.fail('the child printed nothing for %d s' % timeout, pytrace=False)
    return pipe.readline().strip()


def _say(proc, line):
    proc.stdin.write(line + '\n')
    proc.stdin.flush()


def test_file_lock_excludes_other_process(tmp_path):
    target = str(tmp_path / 'res')
    holder = subprocess.Popen([sys.executable, '-c', HOLD_LOCK, target], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert _line_of(holder) == 'locked'
        with pytest.raises(TimeoutError, match='could not lock'):
            with file_lock(target, timeout=0.2):  # the holder keeps it until told to let go
                pass
        _say(holder, 'release')
        with file_lock(target, timeout=20):
            assert holder.wait(20) == 0  # the lock came free when the holder ended
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(10)
        holder.stdout.close()
        holder.stdin.close()
    assert holder.returncode == 0
    assert not os.path.exists(target + '.lock')  # removed on release


def held_back(body, started, release):
    """Route: 200 with half of ``body``, then (once ``release`` is set) the rest; ``started``
    is set when the first half has gone out."""
    def route(handler):
        handler.send_response(200)
        handler.send_header('Content-Length', str(len(body)))
        handler.end_headers()
        handler.wfile.write(body[:len(body) // 2])
        handler.wfile.flush()
        started.set()
        release.wait(60)
        handler.wfile.write(body[len(body) // 2:])
    return route


def test_two_processes_download_one_good_file(server, dest):
    """The first process holds the lock while the server holds back half the file; the second
    says it waits, and only then is the file finished: it then finds it good and skips."""
    started, release = threading.Event(), threading.Event()
    server.routes['/held.bin'] = held_back(PAYLOAD, started, release)
    args = [server.url('/held.bin'), str(dest / 'd'), PAYLOAD_SHA1]
    procs = [subprocess.Popen([sys.executable, '-c', DOWNLOAD] + args, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        assert [_line_of(proc) for proc in procs] == ['ready', 'ready']
        _say(procs[0], 'go')
        assert started.wait(60), 'the first process never started its download'
        _say(procs[1], 'go')
        lines = []
        while not lines or 'waiting for another process' not in lines[-1]:
            lines.append(_line_of(procs[1], stream='stderr'))
        release.set()
        logs = [procs[0].communicate(timeout=60)[1],
                '\n'.join(lines) + '\n' + procs[1].communicate(timeout=60)[1]]
    finally:
        release.set()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert [proc.returncode for proc in procs] == [0, 0], logs
    assert server.hits['/held.bin'] == 1
    assert 'waiting for another process' not in logs[0]
    assert logs[1].count('waiting for another process') == 1 and 'skipping download' in logs[1]
    assert (dest / 'd').read_bytes() == PAYLOAD
    assert os.listdir(dest) == ['d']
