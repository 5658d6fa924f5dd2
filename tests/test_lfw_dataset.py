"""LFW dataset classes and the uint8 image cache."""
import logging
import os
import shutil

import cv2
import mxnet as mx
import numpy as np
import pytest

from gluoncv_gan.data import LFW, FaceFolder, LFWSample
from gluoncv_gan.data.lfw import SAMPLE_ROOT

SAMPLE_FILES = sorted(
    os.path.join(folder, name)
    for folder, _, names in os.walk(os.path.join(SAMPLE_ROOT, 'lfw-deepfunneled'))
    for name in names if name.endswith('.jpg'))


@pytest.fixture
def small_lfw(tmp_path):
    """A copy of 12 bundled faces in the official layout: {root}/lfw-deepfunneled/<Name>/."""
    root = tmp_path / 'lfw'
    for src in SAMPLE_FILES[:12]:
        person = os.path.basename(os.path.dirname(src))
        os.makedirs(root / 'lfw-deepfunneled' / person, exist_ok=True)
        shutil.copy(src, root / 'lfw-deepfunneled' / person)
    return root


def test_bundled_sample_has_hundreds_of_faces():
    data = LFWSample()
    assert len(data) == len(SAMPLE_FILES) == 300
    assert data.num_class == len({os.path.dirname(f) for f in SAMPLE_FILES})
    size_mb = sum(os.path.getsize(f) for f in SAMPLE_FILES) / 1e6
    assert size_mb < 4


def test_items_are_gan_ready():
    data = LFWSample()
    image, label = data[7]
    assert isinstance(image, mx.nd.NDArray)
    assert image.shape == (3, 64, 64) and image.dtype == np.float32
    values = image.asnumpy()
    assert -1 <= values.min() < -0.5 and 0.5 < values.max() <= 1
    assert data.classes[label] == os.path.basename(os.path.dirname(data.files[7]))


def test_cached_and_uncached_items_are_equal():
    cached, plain = LFWSample(), LFWSample(use_cache=False)
    assert cached.images.shape == (300, 64, 64, 3) and cached.images.dtype == np.uint8
    for idx in (0, 150, 299):
        np.testing.assert_array_equal(cached[idx][0].asnumpy(), plain[idx][0].asnumpy())


def test_any_size_by_argument():
    data = LFWSample(size=128)
    assert data[0][0].shape == (3, 128, 128)
    assert data.images.shape == (300, 128, 128, 3)


def test_cache_is_reused_then_rebuilt_when_the_file_list_changes(small_lfw, caplog):
    caplog.set_level(logging.INFO, logger='gluoncv_gan')
    first = LFW(root=str(small_lfw))
    assert len(first) == 12 and os.path.isfile(first.cache_path)
    assert os.path.dirname(first.cache_path) == str(small_lfw / 'cache')
    caplog.clear()
    again = LFW(root=str(small_lfw))
    assert again.cache_path == first.cache_path
    assert 'Building' not in caplog.text
    # a new image: a new key, a rebuilt cache, and the stale one removed
    person = small_lfw / 'lfw-deepfunneled' / 'New_Person'
    person.mkdir()
    shutil.copy(SAMPLE_FILES[40], person / 'New_Person_0001.jpg')
    grown = LFW(root=str(small_lfw))
    assert len(grown) == 13 and grown.cache_path != first.cache_path
    assert 'Building' in caplog.text
    assert not os.path.exists(first.cache_path)
    assert 'New_Person' in grown.classes
    # a different resolution has its own cache
    assert LFW(root=str(small_lfw), size=32).cache_path != grown.cache_path


def test_interrupted_cache_write_is_not_trusted(small_lfw):
    first = LFW(root=str(small_lfw))
    meta = first.cache_path[:-4] + '.json'
    os.remove(meta)  # as if killed between writing the array and its description
    with open(first.cache_path, 'r+b') as f:
        f.truncate(100)
    again = LFW(root=str(small_lfw))
    assert len(again) == 12 and again.images.shape == (12, 64, 64, 3)


def test_greyscale_is_tiled_to_three_channels(small_lfw):
    person = small_lfw / 'lfw-deepfunneled' / 'Grey_Person'
    person.mkdir()
    grey = cv2.cvtColor(cv2.imread(SAMPLE_FILES[0]), cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(person / 'Grey_Person_0001.jpg'), grey)
    assert cv2.imread(str(person / 'Grey_Person_0001.jpg'), cv2.IMREAD_UNCHANGED).ndim == 2
    for use_cache in (True, False):
        data = LFW(root=str(small_lfw), use_cache=use_cache)
        idx = data.classes.index('Grey_Person')
        image = data[int(np.flatnonzero(data.labels == idx)[0])][0].asnumpy()
        assert image.shape == (3, 64, 64)
        np.testing.assert_array_equal(image[0], image[1])
        np.testing.assert_array_equal(image[1], image[2])


def test_corrupt_image_is_skipped_with_a_warning(small_lfw, caplog):
    bad = small_lfw / 'lfw-deepfunneled' / 'Bad_Person'
    bad.mkdir()
    (bad / 'Bad_Person_0001.jpg').write_bytes(b'\xff\xd8 this is not a jpeg')
    with caplog.at_level(logging.WARNING):
        data = LFW(root=str(small_lfw))
    assert len(data) == 12
    assert [os.path.basename(p) for p in data.skipped] == ['Bad_Person_0001.jpg']
    assert 'Bad_Person_0001.jpg' in caplog.text and '1 of 13' in caplog.text
    # the cache remembers the skip, and says so again when it is reused
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert len(LFW(root=str(small_lfw))) == 12
    assert 'Bad_Person_0001.jpg' in caplog.text
    # without a cache the bad file is replaced by a readable one instead of crashing the epoch
    with caplog.at_level(logging.WARNING):
        plain = LFW(root=str(small_lfw), use_cache=False)
        images = [plain[i][0] for i in range(len(plain))]
    assert len(images) == 13 and plain.skipped and 'Bad_Person_0001.jpg' in caplog.text


@pytest.mark.parametrize('make_root', ['missing', 'empty'])
def test_missing_or_empty_root_says_how_to_prepare(tmp_path, make_root):
    root = tmp_path / 'nowhere'
    if make_root == 'empty':
        root.mkdir()
    with pytest.raises(FileNotFoundError, match='prepare_lfw'):
        LFW(root=str(root))


def test_default_root_honours_mxnet_home(mxnet_home):
    with pytest.raises(FileNotFoundError) as err:
        LFW()
    assert str(mxnet_home / 'datasets' / 'lfw') in str(err.value)


def test_face_folder_is_recursive_and_crops_to_square(tmp_path):
    (tmp_path / 'a' / 'b').mkdir(parents=True)
    wide = np.zeros((40, 80, 3), np.uint8)
    wide[:, 20:60] = 255  # the centre square is white, the sides black
    cv2.imwrite(str(tmp_path / 'a' / 'b' / 'wide.png'), wide)
    cv2.imwrite(str(tmp_path / 'a' / 'top.png'), wide)
    data = FaceFolder(str(tmp_path), size=16, cache_dir=None, use_cache=False)
    assert len(data) == 2
    np.testing.assert_allclose(data[0][0].asnumpy(), 1.0)


def test_full_lfw_mirror(full_lfw_root):
    data = LFW(root=full_lfw_root)
    assert len(data) == 13233 and data.num_class == 5749 and not data.skipped
    assert data.images.shape == (13233, 64, 64, 3)
    assert isinstance(data.images, np.memmap)
    image = data[13232][0].asnumpy()
    assert image.shape == (3, 64, 64) and -1 <= image.min() and image.max() <= 1
