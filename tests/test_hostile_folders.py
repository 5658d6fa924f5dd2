"""Image folders from the wild (``--dataset folder``): odd file names, image bombs, broken links,
motion photos, and any bytes at all in an image file."""
import functools
import glob
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gluoncv_gan import train as train_script
from gluoncv_gan.data import FaceFolder
from gluoncv_gan.data.cache import MAX_PIXELS, read_image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACES = sorted(glob.glob(os.path.join(REPO, 'gluoncv_gan', 'data', 'lfw_sample',
                                      'lfw-deepfunneled', '*', '*.jpg')))


@functools.lru_cache(maxsize=8)
def png_bytes(width, height, rows=None):
    """A PNG declaring ``width`` x ``height`` RGB pixels; its rows are zeros, compressed (a
    32000x32000 one is a few MB), or only the first ``rows`` of them (then it does not decode)."""
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + \
            struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
    packer = zlib.compressobj(9)
    rows = height if rows is None else rows
    block = b'\0' * (1 + 3 * width) * min(rows, 64)
    data = b''.join(packer.compress(block) for _ in range(rows // 64))
    data += packer.compress(b'\0' * (1 + 3 * width) * (rows % 64))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0,
                                                              0, 0))
            + chunk(b'IDAT', data + packer.flush()) + chunk(b'IEND', b''))


@pytest.fixture
def folder(tmp_path):
    person = tmp_path / 'faces' / 'someone'
    person.mkdir(parents=True)
    for path in FACES[:4]:
        shutil.copy(path, str(person))
    return tmp_path / 'faces'


def skipped_in_metadata(data):
    with open(data.cache_path[:-4] + '.json') as f:
        return json.load(f)['skipped_reasons']


def test_a_file_name_that_is_not_utf8_is_trained_on(folder, tmp_path, caplog, capsys):
    latin1 = os.path.join(os.fsencode(str(folder / 'someone')), b'Ren\xe9_0001.jpg')
    shutil.copy(FACES[5], latin1)
    with caplog.at_level('WARNING'):
        data = FaceFolder(str(folder), cache_dir=str(tmp_path / 'cache'))
    assert len(data) == 5 and not data.skipped
    assert os.fsdecode(latin1) in data.files
    # and the whole command, through the cache key, the log and the run folder, with a root
    # folder and a broken file named in Latin-1 too
    root = os.path.join(os.fsencode(str(tmp_path)), b'caf\xe9')
    shutil.copytree(os.fsencode(str(folder)), root)
    with open(os.path.join(root, b'someone', b'bad\xff.jpg'), 'wb') as f:
        f.write(b'not an image')
    train_script.main(['--dataset', 'folder', '--data-dir', os.fsdecode(root), '--batch-size',
                       '4', '--ngf', '4', '--ndf', '4', '--nz', '4', '--iterations', '1',
                       '--no-hybridize', '--save-dir', str(tmp_path / 'run')])
    log = (tmp_path / 'run' / 'train.log').read_text()
    assert 'Data: folder, 5 images' in log
    assert 'Skipped unreadable image %s/caf\\xe9/someone/bad\\xff.jpg' % tmp_path in log
    assert 'Logging error' not in capsys.readouterr().err


def test_an_image_that_declares_too_many_pixels_is_skipped_before_decoding(folder, tmp_path,
                                                                            caplog):
    (folder / 'someone' / 'huge.png').write_bytes(png_bytes(32000, 32000, rows=256))
    bomb = bytearray(png_bytes(16, 16))
    bomb[16:24] = struct.pack('>II', 60000, 60000)  # a header only: OpenCV raised on it
    (folder / 'someone' / 'bomb.png').write_bytes(bytes(bomb))
    with caplog.at_level('WARNING'):
        data = FaceFolder(str(folder), cache_dir=str(tmp_path / 'cache'))
    assert len(data) == 4
    reasons = skipped_in_metadata(data)
    assert reasons['someone/huge.png'].startswith('declares 32000x32000 pixels, more than the '
                                                  'limit of %d' % MAX_PIXELS)
    assert reasons['someone/bomb.png'].startswith('declares 60000x60000 pixels')
    assert 'huge.png (declares 32000x32000 pixels' in caplog.text


def test_scanning_a_32000_pixel_square_png_stays_under_2_gb(folder, tmp_path):
    """Peak RSS of a fresh process that imports the package and scans the folder. The PNG is
    whole (3 MB of compressed zeros): decoded, it would take 3 GB."""
    (folder / 'someone' / 'huge.png').write_bytes(png_bytes(32000, 32000))
    code = ('import resource, sys; from gluoncv_gan.data import FaceFolder; '
            'data = FaceFolder(sys.argv[1], cache_dir=sys.argv[2]); '
            'print(len(data), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)')
    result = subprocess.run([sys.executable, '-c', code, str(folder), str(tmp_path / 'cache')],
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    kept, peak_kib = map(int, result.stdout.split())
    assert kept == 4
    assert peak_kib * 1024 < 2 * 10 ** 9, 'peak RSS %.0f MB' % (peak_kib / 1024)


def test_broken_and_looping_links_and_fifos_are_skipped_and_listed(folder, tmp_path, caplog):
    person = folder / 'someone'
    os.symlink('nowhere.jpg', str(person / 'dangling.jpg'))
    os.symlink('loop.jpg', str(person / 'loop.jpg'))
    os.mkfifo(str(person / 'pipe.jpg'))  # reading it would block forever
    with caplog.at_level('WARNING'):
        data = FaceFolder(str(folder), cache_dir=str(tmp_path / 'cache'))
    assert len(data) == 4
    assert skipped_in_metadata(data) == {
        'someone/dangling.jpg': 'broken symbolic link (to nowhere.jpg)',
        'someone/loop.jpg': 'symbolic link loop', 'someone/pipe.jpg': 'not a regular file'}
    for name in ('dangling.jpg', 'loop.jpg', 'pipe.jpg'):
        assert name in caplog.text
    # the metadata is kept: a second dataset on the same folder reads the same cache
    again = FaceFolder(str(folder), cache_dir=str(tmp_path / 'cache'))
    assert again.cache_path == data.cache_path and again.skipped_reasons == data.skipped_reasons


def test_a_jpeg_with_bytes_after_its_end_is_accepted_and_a_cut_one_is_not(tmp_path):
    with open(FACES[0], 'rb') as f:
        jpeg = f.read()
    whole, _ = read_image(FACES[0], 64)
    # a phone's motion photo: a video after the image, which may hold any bytes (an end
    # marker too) but does not end with one
    video = b'\0\0\0\x18ftypmp42' + bytes(range(256)) * 40 + b'\xff\xd9' + b'moov' * 50
    motion = tmp_path / 'motion.jpg'
    motion.write_bytes(jpeg + video)
    image, why = read_image(str(motion), 64)
    assert why is None and (image == whole).all()
    cut = tmp_path / 'cut.jpg'  # cut within the image, then the same kind of bytes after it
    cut.write_bytes(jpeg[:len(jpeg) // 2] + b'\0\0\0\x18ftypmp42' + b'moov' * 50)
    image, why = read_image(str(cut), 64)
    assert image is None and why.startswith('truncated JPEG')


def test_a_png_cut_short_of_its_rows_is_not_an_image(tmp_path):
    short = tmp_path / 'short.png'
    short.write_bytes(png_bytes(64, 64, rows=10))
    image, why = read_image(str(short), 64)
    assert image is None and why


@settings(max_examples=60, deadline=2000, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(
    st.binary(max_size=2048),
    # a real JPEG's bytes with a few of them changed, cut, or followed by others
    st.tuples(st.integers(0, 3), st.lists(st.tuples(st.integers(0, 9999), st.integers(0, 255)),
                                          max_size=8), st.integers(0, 12000),
              st.binary(max_size=64)).map(
        lambda t: _mutated(FACES[t[0]], t[1], t[2], t[3])),
    st.tuples(st.integers(1, 70000), st.integers(1, 70000)).map(
        lambda wh: png_bytes(16, 16)[:16] + struct.pack('>II', *wh) + png_bytes(16, 16)[24:])))
def test_any_bytes_in_an_image_file_give_an_image_or_a_reason(tmp_path, data):
    path = tmp_path / 'x.jpg'
    path.write_bytes(data)
    image, why = read_image(str(path), 16)
    assert (image is None) != (why is None)
    if image is not None:
        assert image.shape == (16, 16, 3) and image.dtype.name == 'uint8'
    else:
        assert isinstance(why, str) and why and '\n' not in why


def _mutated(path, changes, cut, tail):
    with open(path, 'rb') as f:
        data = bytearray(f.read())
    for offset, value in changes:
        data[offset % len(data)] = value
    return bytes(data[:cut]) + tail


@settings(max_examples=25, deadline=5000, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.binary(min_size=1, max_size=20).filter(
    lambda b: b'/' not in b and b'\0' not in b and not b.startswith(b'.')), min_size=1,
    max_size=4, unique=True))
def test_any_file_name_bytes_are_listed_and_cached(tmp_path_factory, names):
    root = tmp_path_factory.mktemp('names')
    person = os.path.join(os.fsencode(str(root)), b'p')
    os.mkdir(person)
    for name in names:
        shutil.copy(FACES[0], os.path.join(person, name + b'.jpg'))
    data = FaceFolder(str(root), cache_dir=str(root / 'cache'))
    assert len(data) == len(names) and not data.skipped
    assert sorted(os.fsencode(f) for f in data.files) == sorted(
        os.path.join(person, name + b'.jpg') for name in names)
