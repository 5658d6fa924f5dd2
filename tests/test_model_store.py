"""The model store end to end on a loopback mirror: download, verify, cache, load.

A tiny training run is exported once per session with ``gluoncv_gan.export``; each test
registers the exported sha1 in ``_model_sha1_versions`` and serves the zip from a
:class:`loopback.LoopbackServer` or a ``file://`` folder. Nothing touches the network.
"""
import collections
import io
import json
import logging
import multiprocessing
import os
import re
import shutil
import zipfile

import mxnet as mx
import numpy as np
import pytest
from loopback import (LoopbackServer, fail_first, send_ranges, send_slowly, send_status,
                      send_truncated)

from gluoncv_gan import export, train
from gluoncv_gan.model_zoo import dcgan, get_model, model_store
from gluoncv_gan.model_zoo.model_store import (REPO_ENV, PretrainedNotAvailable, get_model_file,
                                               pretrained_model_list, purge, short_hash)
from gluoncv_gan.utils.download import DownloadError, file_checksum

NAME = 'dcgan_lfw'
ARCH = dict(nz=16, ngf=8, ndf=8)
OTHER_SHA1 = '0123abcd' + '0' * 32  # a second "published" version that no mirror serves

Exported = collections.namedtuple(
    'Exported', 'sha1 stem params_path zip_path zip_bytes checkpoint printed_max_diff '
                'out16 out32')


def _samples(net):
    """The images export compares (64 samples of seed 0), as float32 NumPy."""
    return net.generate(64, seed=0).asnumpy()


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture(scope='session')
def exported(tmp_path_factory):
    """Train a tiny DCGAN for 2 iterations and export it (float16) once for the session."""
    base = tmp_path_factory.mktemp('exported')
    run, out = base / 'run', base / 'out'
    root_logger = logging.getLogger()
    saved_handlers, saved_level = list(root_logger.handlers), root_logger.level
    export_logger = logging.getLogger('gluoncv_gan.export')
    capture = _ListHandler()
    export_logger.addHandler(capture)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv('MXNET_HOME', str(base / 'mxnet_home'))  # the dataset cache goes here
            mp.delenv(REPO_ENV, raising=False)
            train.main(['--dataset', 'lfw_sample', '--batch-size', '8', '--ngf', '8', '--ndf',
                        '8', '--nz', '16', '--iterations', '2', '--save-dir', str(run)])
            sha1, zip_path = export.main([str(run), '--out-dir', str(out)])
    finally:
        export_logger.removeHandler(capture)
        for handler in list(root_logger.handlers):  # train.main replaced the root handlers
            root_logger.removeHandler(handler)
            handler.close()
        for handler in saved_handlers:
            root_logger.addHandler(handler)
        root_logger.setLevel(saved_level)
    printed = [re.search(r'max \|diff\| ([0-9.e+-]+)', m) for m in capture.messages]
    printed = [float(m.group(1)) for m in printed if m]
    assert len(printed) == 1, capture.messages
    stem = '%s-%s' % (NAME, sha1[:8])
    params_path = str(out / (stem + '.params'))
    checkpoint = export.choose_checkpoint(str(run))
    net16 = get_model(NAME, **ARCH)
    net16.load_parameters(params_path, cast_dtype=True, dtype_source='current')
    net32 = get_model(NAME, **ARCH)
    net32.load_parameters(os.path.join(checkpoint, 'model.params'))
    with open(zip_path, 'rb') as f:
        zip_bytes = f.read()
    return Exported(sha1, stem, params_path, zip_path, zip_bytes, checkpoint, printed[0],
                    _samples(net16), _samples(net32))


@pytest.fixture
def store(exported, mxnet_home, tmp_path, monkeypatch):
    """Publish the exported weights as the only version of dcgan_lfw; no shipped copies, no
    mirror; returns the default cache root ($MXNET_HOME/models)."""
    monkeypatch.setattr(model_store, '_model_sha1_versions', [(exported.sha1, NAME)])
    shipped = tmp_path / 'shipped_empty'
    shipped.mkdir()
    monkeypatch.setattr(model_store, 'SHIPPED_DIR', str(shipped))
    monkeypatch.delenv(REPO_ENV, raising=False)
    return os.path.join(str(mxnet_home), 'models')


def _route(stem):
    return '/gluon/models/%s.zip' % stem


def _zip_of(data, member):
    """A zip (bytes) holding ``data`` as ``member``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, data)
    return buffer.getvalue()


def _load_pretrained(**kwargs):
    return get_model(NAME, pretrained=kwargs.pop('pretrained', True), **ARCH, **kwargs)


def _assert_left_nothing(root):
    """No weights, no temporary file or folder, no lock file in the cache root."""
    assert os.listdir(root) == []


# --------------------------------------------------------------------------------------------
# the export itself
# --------------------------------------------------------------------------------------------
def test_export_writes_float16_params_named_by_their_sha1(exported):
    assert file_checksum(exported.params_path, 'sha1') == exported.sha1
    assert sorted(os.listdir(os.path.dirname(exported.params_path))) == \
        sorted([exported.stem + '.params', exported.stem + '.zip'])  # no staging file left
    assert all(v.dtype == np.float16 for v in mx.nd.load(exported.params_path).values())
    with zipfile.ZipFile(exported.zip_path) as archive:
        assert archive.namelist() == [exported.stem + '.params']
    # the printed tolerance is the real float16-vs-float32 difference (3 significant digits)
    actual = np.abs(exported.out16 - exported.out32).max()
    assert actual == pytest.approx(exported.printed_max_diff, rel=0.01)


def test_export_finds_best_checkpoint_of_a_moved_run(tmp_path):
    run = tmp_path / 'moved_run'
    for it in (1, 2):
        ckpt = run / 'checkpoints' / ('iter-%08d' % it)
        ckpt.mkdir(parents=True)
        (ckpt / 'state.json').write_text('{}')
    # best.json still names the checkpoint at the run's old place
    (run / 'best.json').write_text(json.dumps(
        {'checkpoint': '/old/place/run/checkpoints/iter-00000001'}))
    assert export.choose_checkpoint(str(run)) == str(run / 'checkpoints' / 'iter-00000001')


# --------------------------------------------------------------------------------------------
# download, verify, load
# --------------------------------------------------------------------------------------------
def _check_loaded(net, exported):
    out = _samples(net)
    np.testing.assert_array_equal(out, exported.out16)  # exactly the stored float16 weights
    assert np.abs(out - exported.out32).max() <= exported.printed_max_diff * 1.01


def test_download_from_http_mirror_verify_and_load(exported, store, monkeypatch):
    with LoopbackServer({_route(exported.stem): exported.zip_bytes}) as server:
        monkeypatch.setenv(REPO_ENV, 'http://127.0.0.1:%d' % server.port)
        net = _load_pretrained()
        assert server.hits[_route(exported.stem)] == 1
        _check_loaded(net, exported)
        path = os.path.join(store, exported.stem + '.params')
        assert os.listdir(store) == [exported.stem + '.params']
        assert file_checksum(path, 'sha1') == exported.sha1
        # the second time the cache answers
        assert get_model_file(NAME) == path
        assert sum(server.hits.values()) == 1


def test_download_from_file_mirror(exported, store, tmp_path, monkeypatch):
    mirror = tmp_path / 'mirror'
    (mirror / 'gluon' / 'models').mkdir(parents=True)
    shutil.copy(exported.zip_path, str(mirror / 'gluon' / 'models'))
    monkeypatch.setenv(REPO_ENV, 'file://' + str(mirror) + '/')
    net = _load_pretrained()
    _check_loaded(net, exported)
    assert os.listdir(store) == [exported.stem + '.params']


# --------------------------------------------------------------------------------------------
# failures leave nothing behind
# --------------------------------------------------------------------------------------------
def test_wrong_hash_is_refused_and_names_url_and_both_hashes(exported, store, monkeypatch):
    wrong = 'f' * 40  # the table's sha1; the mirror serves the exported weights under its name
    monkeypatch.setattr(model_store, '_model_sha1_versions', [(wrong, NAME)])
    stem = '%s-%s' % (NAME, wrong[:8])
    with open(exported.params_path, 'rb') as f:
        body = _zip_of(f.read(), stem + '.params')
    with LoopbackServer({_route(stem): body}) as server:
        monkeypatch.setenv(REPO_ENV, 'http://127.0.0.1:%d' % server.port)
        with pytest.raises(DownloadError) as info:
            _load_pretrained()
        message = str(info.value)
        assert server.url(_route(stem)) in message
        assert wrong in message and exported.sha1 in message
        assert 'mismatch' in message
    _assert_left_nothing(store)


def test_truncated_download_is_refused(exported, store, monkeypatch):
    half = exported.zip_bytes[:len(exported.zip_bytes) // 2]
    route = send_truncated(half, length=len(exported.zip_bytes))
    with LoopbackServer({_route(exported.stem): route}) as server:
        monkeypatch.setenv(REPO_ENV, 'http://127.0.0.1:%d' % server.port)
        with pytest.raises(DownloadError, match='interrupted download'):
            get_model_file(NAME, progress=False)
        _assert_left_nothing(store)
        # a later run with a healthy mirror succeeds
        server.routes[_route(exported.stem)] = exported.zip_bytes
        assert file_checksum(get_model_file(NAME, progress=False), 'sha1') == exported.sha1


def test_mirror_that_drops_once_and_is_busy_once_still_delivers(exported, store, monkeypatch):
    cut = len(exported.zip_bytes) // 2
    route = fail_first(1, send_ranges(exported.zip_bytes, drop_after=cut), code=503)
    with LoopbackServer({_route(exported.stem): route}) as server:
        monkeypatch.setenv(REPO_ENV, 'http://127.0.0.1:%d' % server.port)
        target = get_model_file(NAME, progress=False)
        ranges = [request.headers.get('Range') for request in server.requests]
    assert ranges == [None, None, 'bytes=%d-' % cut]  # 503, cut short, resumed
    assert file_checksum(target, 'sha1') == exported.sha1
    assert os.listdir(store) == [exported.stem + '.params']


@pytest.mark.parametrize('status', [500, 404])
def test_http_error_is_reported_with_url_and_status(exported, store, monkeypatch, status):
    with LoopbackServer({_route(exported.stem): send_status(status)}) as server:
        monkeypatch.setenv(REPO_ENV, 'http://127.0.0.1:%d' % server.port)
        with pytest.raises(DownloadError) as info:
            get_model_file(NAME, progress=False)
        assert 'HTTP error %d' % status in str(info.value)
        assert server.url(_route(exported.stem)) in str(info.value)
    _assert_left_nothing(store)


def _damaged(data):
    """``data`` with bytes flipped in the middle of the compressed stream."""
    data = bytearray(data)
    middle = len(data) // 3
    for i in range(middle, middle + 64):
        data[i] ^= 0xFF
    return bytes(data)


@pytest.mark.parametrize('kind', ['not a zip', 'damaged data', 'wrong member'])
def test_corrupt_zip_is_refused(exported, store, monkeypatch, kind):
    body = {'not a zip': b'<html>not a zip</html>' * 50,
            'damaged data': _damaged(exported.zip_bytes),
            'wrong member': _zip_of(b'weights', 'other.params')}[kind]
    with LoopbackServer({_route(exported.stem): body}) as server:
        monkeypatch.setenv(REPO_ENV, 'http://127.0.0.1:%d' % server.port)
        with pytest.raises(DownloadError) as info:
            get_model_file(NAME, progress=False)
        url = server.url(_route(exported.stem))
    message = str(info.value)
    assert url in message
    if kind == 'wrong member':
        assert 'does not contain %s.params' % exported.stem in message
    else:
        assert 'not a valid zip file' in message or 'mismatch' in message
    _assert_left_nothing(store)


def test_stale_cached_file_is_replaced_never_loaded(exported, store, monkeypatch):
    # a loadable pair with other weights: loading it would give other images
    os.makedirs(store)
    target = os.path.join(store, exported.stem + '.params')
    shutil.copy(os.path.join(exported.checkpoint, 'model.params'), target)
    loaded = []
    original = dcgan.DCGAN.load_parameters

    def spy(self, filename, *args, **kwargs):
        loaded.append(file_checksum(filename, 'sha1'))
        return original(self, filename, *args, **kwargs)

    monkeypatch.setattr(dcgan.DCGAN, 'load_parameters', spy)
    with LoopbackServer({_route(exported.stem): exported.zip_bytes}) as server:
        monkeypatch.setenv(REPO_ENV, 'http://127.0.0.1:%d' % server.port)
        net = _load_pretrained()
        assert server.hits[_route(exported.stem)] == 1
    assert loaded == [exported.sha1]
    assert file_checksum(target, 'sha1') == exported.sha1
    np.testing.assert_array_equal(_samples(net), exported.out16)


def test_valid_cached_file_is_used_without_a_request(exported, store, monkeypatch):
    os.makedirs(store)
    shutil.copy(exported.params_path, store)
    with LoopbackServer({_route(exported.stem): exported.zip_bytes}) as server:
        monkeypatch.setenv(REPO_ENV, 'http://127.0.0.1:%d' % server.port)
        net = _load_pretrained()
        assert sum(server.hits.values()) == 0
    np.testing.assert_array_equal(_samples(net), exported.out16)


def _fetch_in_child(barrier, root, results):
    try:
        barrier.wait(timeout=120)
        results.put(('ok', get_model_file(NAME, root=root, progress=False)))
    except BaseException as err:  # report it to the parent rather than dying silently
        results.put(('error', repr(err)))


def test_two_processes_download_once(exported, store, monkeypatch):
    ctx = multiprocessing.get_context('fork')  # inherits the patched table and environment
    route = send_slowly(exported.zip_bytes, pieces=5, delay=0.1)  # the first holds the lock
    with LoopbackServer({_route(exported.stem): route}) as server:
        monkeypatch.setenv(REPO_ENV, 'http://127.0.0.1:%d' % server.port)
        barrier, results = ctx.Barrier(2), ctx.Queue()
        workers = [ctx.Process(target=_fetch_in_child, args=(barrier, store, results))
                   for _ in range(2)]
        for worker in workers:
            worker.start()
        answers = [results.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(30)
        assert [w.exitcode for w in workers] == [0, 0]
        assert server.hits[_route(exported.stem)] == 1
    target = os.path.join(store, exported.stem + '.params')
    assert answers == [('ok', target), ('ok', target)]
    assert os.listdir(store) == [exported.stem + '.params']  # no lock, no scratch folder
    assert file_checksum(target, 'sha1') == exported.sha1


# --------------------------------------------------------------------------------------------
# shipped copies and the missing-repository message
# --------------------------------------------------------------------------------------------
def test_shipped_copy_is_installed_without_network(exported, store, tmp_path, monkeypatch):
    shipped = tmp_path / 'weights'
    shipped.mkdir()
    shutil.copy(exported.zip_path, str(shipped))
    monkeypatch.setattr(model_store, 'SHIPPED_DIR', str(shipped))

    def no_network(*args, **kwargs):
        raise AssertionError('the shipped copy must be used without downloading')

    monkeypatch.setattr(model_store, 'download', no_network)
    net = _load_pretrained()
    np.testing.assert_array_equal(_samples(net), exported.out16)
    target = os.path.join(store, exported.stem + '.params')
    assert os.listdir(store) == [exported.stem + '.params']
    assert file_checksum(target, 'sha1') == exported.sha1
    assert os.path.isfile(os.path.join(str(shipped), exported.stem + '.zip'))  # copied, kept


def test_damaged_shipped_copy_is_refused(exported, store, tmp_path, monkeypatch):
    shipped = tmp_path / 'weights'
    shipped.mkdir()
    (shipped / (exported.stem + '.zip')).write_bytes(_zip_of(b'garbage',
                                                             exported.stem + '.params'))
    monkeypatch.setattr(model_store, 'SHIPPED_DIR', str(shipped))
    with pytest.raises(DownloadError, match='reinstall gluoncv-gan'):
        get_model_file(NAME)
    _assert_left_nothing(store)


def test_no_repo_and_nothing_shipped_says_to_set_the_repo(exported, store):
    with pytest.raises(DownloadError) as info:
        _load_pretrained()
    message = str(info.value)
    assert '\n' not in message
    assert REPO_ENV in message
    assert 'gluon/models/%s.zip' % exported.stem in message
    assert exported.sha1 in message  # the file it needs, by name and by sha1
    _assert_left_nothing(store)


# --------------------------------------------------------------------------------------------
# versions, listing, purge, default root
# --------------------------------------------------------------------------------------------
def test_tag_selects_a_version_by_hash_prefix(exported, store, monkeypatch):
    # the exported version is the older one; the default (last) is OTHER_SHA1
    monkeypatch.setattr(model_store, '_model_sha1_versions',
                        [(exported.sha1, NAME), (OTHER_SHA1, NAME)])
    assert short_hash(NAME) == OTHER_SHA1[:8]
    assert short_hash(NAME, tag=exported.sha1[:5].upper()) == exported.sha1[:8]
    with LoopbackServer({_route(exported.stem): exported.zip_bytes}) as server:
        monkeypatch.setenv(REPO_ENV, 'http://127.0.0.1:%d' % server.port)
        net = _load_pretrained(pretrained=exported.sha1[:6])
        np.testing.assert_array_equal(_samples(net), exported.out16)
        with pytest.raises(DownloadError, match='HTTP error 404'):
            get_model_file(NAME, progress=False)  # the default version is not on the mirror
        assert server.hits[_route('%s-%s' % (NAME, OTHER_SHA1[:8]))] == 1


def test_unknown_tag_or_name_is_a_clear_error(exported, store):
    with pytest.raises(PretrainedNotAvailable) as info:
        get_model_file(NAME, tag='deadbeef')
    assert "'deadbeef'" in str(info.value) and exported.sha1[:8] in str(info.value)
    with pytest.raises(PretrainedNotAvailable, match='No pretrained weights are published for '
                                                      "'dcgan_lfw_128'"):
        get_model_file('dcgan_lfw_128')
    assert not os.path.exists(store)  # resolved before anything is created


def test_pretrained_model_list(exported, monkeypatch):
    monkeypatch.setattr(model_store, '_model_sha1_versions', [])
    assert pretrained_model_list() == []
    monkeypatch.setattr(model_store, '_model_sha1_versions',
                        [(OTHER_SHA1, 'dcgan_lfw_128'), (exported.sha1, NAME),
                         ('1' * 40, 'dcgan_lfw_128')])
    assert pretrained_model_list() == ['dcgan_lfw', 'dcgan_lfw_128']


def test_purge_removes_only_gluoncv_gan_weights(exported, store):
    os.makedirs(store)
    ours = [exported.stem + '.params', 'dcgan_lfw_128-0123abcd.params']
    theirs = ['resnet50_v1b-0ecdba34.params', 'dcgan_lfw-notes.txt', 'yolo3_darknet53_coco.zip']
    for name in ours + theirs:
        with open(os.path.join(store, name), 'wb') as f:
            f.write(b'x')
    assert purge() == sorted(ours)
    assert sorted(os.listdir(store)) == sorted(theirs)
    assert purge() == []


def test_default_root_follows_mxnet_home(exported, store, mxnet_home, tmp_path, monkeypatch):
    shipped = tmp_path / 'weights'
    shipped.mkdir()
    shutil.copy(exported.zip_path, str(shipped))
    monkeypatch.setattr(model_store, 'SHIPPED_DIR', str(shipped))
    other_home = tmp_path / 'other_home'
    monkeypatch.setenv('MXNET_HOME', str(other_home))
    path = get_model_file(NAME)
    assert path == os.path.join(str(other_home), 'models', exported.stem + '.params')
    assert not os.path.exists(store)  # the earlier MXNET_HOME was not touched
    assert purge() == [exported.stem + '.params']
    assert os.listdir(str(other_home / 'models')) == []
