"""Export of a run: the averaged generator of its last epoch-end checkpoints."""
import os

import mxnet as mx
import numpy as np
import pytest

from gluoncv_gan import export, train
from gluoncv_gan.estimator.checkpoint import list_checkpoints
from gluoncv_gan.pipeline.generator import load_checkpoint_pair


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp('export_run') / 'run'
    home = tmp_path_factory.mktemp('export_home')
    old = os.environ.get('MXNET_HOME')
    os.environ['MXNET_HOME'] = str(home)
    try:
        train.main(['--dataset', 'lfw_sample', '--batch-size', '16', '--ngf', '8', '--ndf', '8',
                    '--nz', '16', '--epochs', '3', '--checkpoint-interval', '7',
                    '--keep-checkpoints', '10', '--save-dir', str(folder)])
    finally:
        if old is None:
            os.environ.pop('MXNET_HOME')
        else:
            os.environ['MXNET_HOME'] = old
    return str(folder)


def test_average_uses_the_newest_epoch_end_checkpoints(run, tmp_path):
    ends = export.epoch_checkpoints(run, 2)
    per_epoch = 300 // 16
    assert [os.path.basename(c) for c in ends] == ['iter-%08d' % (per_epoch * e) for e in (2, 3)]
    assert len(list_checkpoints(os.path.join(run, 'checkpoints'))) > 3  # mid-epoch ones skipped
    sha1, zip_path = export.main([run, '--average', '2', '--out-dir', str(tmp_path),
                                  '--dtype', 'float32'])
    published = mx.nd.load(zip_path[:-4] + '.params')
    key = 'generator.features.0.weight'
    expected = np.mean([mx.nd.load(os.path.join(c, 'model.params'))[key].asnumpy()
                        for c in ends], axis=0)
    np.testing.assert_allclose(published[key].asnumpy(), expected, rtol=1e-6, atol=1e-7)
    newest = mx.nd.load(os.path.join(ends[-1], 'model.params'))
    d_key = 'discriminator.output.weight'
    np.testing.assert_array_equal(published[d_key].asnumpy(), newest[d_key].asnumpy())
    # BatchNorm statistics were recalibrated for the averaged weights, not copied
    rv = 'generator.features.1.running_var'
    assert not np.allclose(published[rv].asnumpy(), newest[rv].asnumpy())


def test_average_ending_at_an_earlier_epoch(run, tmp_path):
    per_epoch = 300 // 16
    ends = export.epoch_checkpoints(run, 2, end_epoch=2)
    assert [os.path.basename(c) for c in ends] == ['iter-%08d' % (per_epoch * e) for e in (1, 2)]
    with pytest.raises(FileNotFoundError, match='no checkpoint saved after epoch 7'):
        export.epoch_checkpoints(run, 2, end_epoch=7)
    with pytest.raises(FileNotFoundError, match='up to epoch 1, fewer than --average 2'):
        export.epoch_checkpoints(run, 2, end_epoch=1)
    with pytest.raises(SystemExit, match='add --average'):
        export.main([run, '--end-epoch', '2', '--out-dir', str(tmp_path)])


def test_average_needs_enough_epoch_end_checkpoints(run, tmp_path):
    with pytest.raises(SystemExit, match='fewer than --average 9'):
        export.main([run, '--average', '9', '--out-dir', str(tmp_path)])


def test_float16_export_loads_for_evaluation(run, tmp_path):
    """The published format (float16) can be evaluated straight from the exported file."""
    import shutil
    from gluoncv_gan.pipeline.generator import load_generator
    sha1, zip_path = export.main([run, '--average', '2', '--out-dir', str(tmp_path),
                                  '--dtype', 'float16'])
    params = zip_path[:-4] + '.params'
    shutil.copy(os.path.join(run, 'config.yaml'), str(tmp_path))  # the run's widths
    net = load_generator('dcgan_lfw', params=params)
    weight = net.generator.collect_params()[net.generator.prefix + 'conv0_weight'].data()
    assert weight.dtype == np.float32
    saved = mx.nd.load(params)['generator.features.0.weight']
    assert saved.dtype == np.float16
    np.testing.assert_array_equal(weight.asnumpy(), saved.asnumpy().astype(np.float32))


def _reference_images(run, latent):
    """The images the run's exported generator must reproduce (BatchNorm running statistics)."""
    net, _, _ = load_checkpoint_pair(export.choose_checkpoint(run))
    with mx.autograd.predict_mode():
        return net.generator(mx.nd.array(latent)).asnumpy()


def test_symbol_export_loads_without_the_package_and_gives_identical_images(run, tmp_path):
    paths, difference = export.main([run, '--format', 'symbol', '--out-dir', str(tmp_path)])
    assert [os.path.basename(p) for p in paths] == ['generator-symbol.json',
                                                    'generator-0000.params']
    assert difference == 0.0
    assert sorted(os.listdir(tmp_path)) == ['generator-0000.params', 'generator-symbol.json']
    deployed = mx.gluon.SymbolBlock.imports(paths[0], ['data'], paths[1], ctx=mx.cpu())
    latent = np.random.RandomState(3).standard_normal((6, 16, 1, 1)).astype(np.float32)
    images = deployed(mx.nd.array(latent)).asnumpy()
    assert images.shape == (6, 3, 64, 64)
    np.testing.assert_array_equal(images, _reference_images(run, latent))
    # inference-mode BatchNorm: an image does not depend on the rest of its batch
    np.testing.assert_array_equal(deployed(mx.nd.array(latent[:1])).asnumpy(), images[:1])


def test_onnx_export_matches_mxnet_in_onnxruntime(run, tmp_path):
    ort = pytest.importorskip('onnxruntime', reason='onnxruntime is not installed: pip install '
                                                    '"gluoncv-gan[onnx]" (CI installs it)')
    (path,), _ = export.main([run, '--format', 'onnx', '--out-dir', str(tmp_path)])
    assert os.path.basename(path) == 'generator.onnx'
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    assert [i.name for i in session.get_inputs()] == ['data']  # weights are not inputs
    latent = np.random.RandomState(4).standard_normal((5, 16, 1, 1)).astype(np.float32)
    images = session.run(None, {'data': latent})[0]
    assert images.shape == (5, 3, 64, 64)
    np.testing.assert_allclose(images, _reference_images(run, latent), rtol=0, atol=1e-5)


def test_onnx_export_without_onnx_names_the_extra(run, tmp_path, monkeypatch, capsys):
    import sys
    monkeypatch.setitem(sys.modules, 'onnx', None)
    with pytest.raises(SystemExit) as stop:
        export.main([run, '--format', 'onnx', '--out-dir', str(tmp_path)])
    assert stop.value.code == 2
    assert 'pip install "gluoncv-gan[onnx]"' in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_pretrained_export_needs_a_deployable_format(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        export.main(['dcgan_lfw', '--pretrained', '--out-dir', str(tmp_path)])
    assert stop.value.code == 2
    assert 'add --format symbol or --format onnx' in capsys.readouterr().err


def test_pretrained_symbol_export(tmp_path):
    paths, difference = export.main(['dcgan_lfw', '--pretrained', '--format', 'symbol',
                                     '--out-dir', str(tmp_path)])
    assert difference == 0.0 and all(os.path.isfile(p) for p in paths)
