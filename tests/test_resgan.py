"""resgan_lfw: the residual networks, their multiply-adds, their config key and their recipe."""
import json
import os

import mxnet as mx
import numpy as np
import pytest

from gluoncv_gan import export
from gluoncv_gan import train as train_script
from gluoncv_gan.benchmark import conv_macs
from gluoncv_gan.model_zoo import (DCGANDiscriminator, DCGANGenerator, ResGAN,
                                   ResGANDiscriminator, SkipExcitation, UpBlock, get_model,
                                   pretrained_model_list)
from gluoncv_gan.model_zoo.model_store import PretrainedNotAvailable
from gluoncv_gan.utils.config import ConfigError, arch_kwargs, load_config
from gluoncv_gan.utils.macs import count_macs
from params_check import assert_same_parameters

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(REPO, 'configs', 'resgan_lfw.yaml')


def num_params(block):
    return sum(p.data().size for p in block.collect_params().values())


def total_macs(block, input_shape):
    return sum(macs for _, _, macs in count_macs(block, input_shape))


@pytest.mark.parametrize('kwargs, counts, d_class', [
    ({}, (3351075, 2767360), DCGANDiscriminator),
    ({'ndf': 32, 'discriminator': 'residual'}, (3351075, 636482), ResGANDiscriminator)])
def test_parameter_counts_and_shapes_at_64(kwargs, counts, d_class):
    net = get_model('resgan_lfw', **kwargs)
    # BatchNorm statistics and spectral-norm vectors included, as for the other names
    assert (num_params(net.generator), num_params(net.discriminator)) == counts
    assert type(net.discriminator) is d_class
    assert net.generator.ngf == 64 and net.discriminator.ndf == kwargs.get('ndf', 64)
    z = net.sample_latent(3, seed=0)
    with mx.autograd.predict_mode():
        images = net(z)
        scores = net.discriminator(images)
    assert images.shape == (3, 3, 64, 64) and scores.shape == (3,)
    values = images.asnumpy()
    assert values.min() >= -1 and values.max() <= 1 and values.std() > 0.01
    assert np.isfinite(scores.asnumpy()).all()


def test_shapes_at_128_and_widths_per_side():
    net = ResGAN(resolution=128, ngf=32, ndf=16, discriminator='residual')
    net.initialize()
    with mx.autograd.predict_mode():
        images = net(mx.nd.zeros((2, 100, 1, 1)))
        scores = net.discriminator(images)
        tutorial = ResGAN(resolution=128, ngf=32, ndf=16)
        tutorial.initialize()
        assert tutorial.discriminator(images).shape == (2,)
    assert images.shape == (2, 3, 128, 128) and scores.shape == (2,)
    # one more block each; every side keeps its channels: ngf * 32 / side, ndf * 32 / side
    assert [b.conv2._channels for b in net.generator.blocks] == [128, 64, 32, 16, 8]
    assert [b.conv2._channels for b in net.discriminator.blocks] == [8, 16, 32, 64, 128]
    with pytest.raises(ValueError, match='power of two'):
        ResGAN(resolution=96)
    with pytest.raises(ValueError, match="discriminator must be one of dcgan, residual"):
        ResGAN(discriminator='patch')


@pytest.mark.parametrize('discriminator', ['dcgan', 'residual'])
def test_hybridized_matches_imperative(discriminator):
    net = get_model('resgan_lfw', ngf=32, ndf=16, skip_excitation=True,
                    discriminator=discriminator)
    z = net.sample_latent(2, seed=1)
    with mx.autograd.predict_mode():
        images, scores = net(z).asnumpy(), net.discriminator(net(z)).asnumpy()
    net.generator.hybridize(static_alloc=True, static_shape=True)
    net.discriminator.hybridize(static_alloc=True, static_shape=True)
    with mx.autograd.predict_mode():
        np.testing.assert_allclose(net(z).asnumpy(), images, atol=1e-5)
        np.testing.assert_allclose(net.discriminator(net(z)).asnumpy(), scores, rtol=1e-4,
                                   atol=1e-4)


def test_skip_excitation_gates_the_32_and_64_pixel_maps():
    plain = get_model('resgan_lfw', ngf=32, ndf=16)
    gated = get_model('resgan_lfw', ngf=32, ndf=16, skip_excitation=True)
    assert not len(plain.generator.excitations)
    # (gated map, gating map): 32x32 from 4x4, 64x64 from 8x8
    assert gated.generator._gates == [(3, 0), (4, 1)]
    # the gates' parameters only: two convolutions (4x4 then 1x1, with biases) per gate
    extra = (256 * 32 * 16 + 32 + 32 * 32 + 32) + (128 * 16 * 16 + 16 + 16 * 16 + 16)
    assert num_params(gated.generator) - num_params(plain.generator) == extra
    gate = SkipExcitation(8, 4, low_resolution=8)
    gate.initialize()
    low, high = mx.nd.random.normal(shape=(2, 8, 8, 8)), mx.nd.ones((2, 4, 16, 16))
    out = gate(low, high).asnumpy()
    # one gate in (0, 1) per image and channel, the same at every position
    assert ((out > 0) & (out < 1)).all()
    np.testing.assert_array_equal(out, np.broadcast_to(out[:, :, :1, :1], out.shape))


def test_macs_agree_with_the_dcgan_layer_count_and_the_block_formula():
    """The graph counter gives what benchmark.conv_macs counts layer by layer for DCGAN, and an
    up-sampling block's 9 * side^2 * (Cin Cout + Cout^2) + (side / 2)^2 Cin Cout."""
    for block, shape, size in ((DCGANGenerator(), (1, 100, 1, 1), 1),
                               (DCGANDiscriminator(), (1, 3, 64, 64), 64)):
        assert total_macs(block, shape) == sum(m for _, m, _ in conv_macs(block, size))
    assert total_macs(UpBlock(16, 8), (1, 16, 4, 4)) == 9 * 64 * (16 * 8 + 8 * 8) + 16 * 16 * 8
    assert total_macs(UpBlock(16, 8), (5, 16, 4, 4)) == total_macs(UpBlock(16, 8), (1, 16, 4, 4))


def iteration_macs(net, resolution=64):
    """3 Fg + 8 Fd: the batch processor's iteration (see benchmark.flops_per_image)."""
    return 3 * total_macs(net.generator, (1, net.nz, 1, 1)) + \
        8 * total_macs(net.discriminator, (1, 3, resolution, resolution))


@pytest.mark.parametrize('kwargs', [{}, {'skip_excitation': True},
                                    {'ndf': 32, 'discriminator': 'residual'},
                                    {'ngf': 32, 'ndf': 64, 'discriminator': 'residual'}])
def test_an_iteration_costs_at_most_twice_dcgan_lfw(kwargs):
    ratio = iteration_macs(get_model('resgan_lfw', **kwargs)) / \
        iteration_macs(get_model('dcgan_lfw'))
    assert 1.0 < ratio <= 2.0


def test_the_recipe_fits_twice_the_published_dcgan_compute():
    recipe = load_config(RECIPE)
    published = load_config(os.path.join(REPO, 'configs', 'dcgan_lfw_long.yaml'))
    net = get_model(recipe['model'], **arch_kwargs(recipe))
    ratio = iteration_macs(net) / iteration_macs(get_model('dcgan_lfw'))
    assert recipe['batch_size'] == published['batch_size']
    assert recipe['epochs'] * ratio <= 2 * published['epochs']
    assert (recipe['loss'], recipe['image_size']) == ('vanilla', net.resolution)
    assert type(net.discriminator) is DCGANDiscriminator and recipe['ema_decay'] > 0
    assert recipe['checkpoint_interval'] == 0 and recipe['keep_checkpoints'] >= 5  # --average 5


def test_skip_excitation_key_is_checked_and_passed_only_when_set():
    assert load_config(None, {'model': 'resgan_lfw'})['skip_excitation'] is None
    assert 'skip_excitation' not in arch_kwargs(load_config(None, {'model': 'resgan_lfw'}))
    config = load_config(None, {'model': 'resgan_lfw', 'skip_excitation': True})
    assert arch_kwargs(config) == {'nz': 100, 'ngf': 64, 'ndf': 64, 'skip_excitation': True}
    assert get_model('resgan_lfw', **arch_kwargs(config)).generator.skip_excitation
    with pytest.raises(ConfigError, match="'skip_excitation' applies to the models that offer "
                                          "it \\(resgan_lfw\\), not to dcgan_lfw"):
        load_config(None, {'model': 'dcgan_lfw', 'skip_excitation': False})
    with pytest.raises(ConfigError, match="'skip_excitation' has the value 'yes'"):
        load_config(None, {'model': 'resgan_lfw', 'skip_excitation': 'yes'})


def test_discriminator_key_is_checked_and_chooses_the_network():
    assert load_config(None, {'model': 'resgan_lfw'})['discriminator'] is None
    config = load_config(None, {'model': 'resgan_lfw', 'discriminator': 'residual', 'ndf': 32})
    assert arch_kwargs(config)['discriminator'] == 'residual'
    net = get_model('resgan_lfw', **arch_kwargs(config))
    assert type(net.discriminator) is ResGANDiscriminator
    with pytest.raises(ConfigError, match="'discriminator' applies to the models that offer "
                                          "it \\(resgan_lfw\\), not to sngan_lfw"):
        load_config(None, {'model': 'sngan_lfw', 'discriminator': 'dcgan'})
    with pytest.raises(ConfigError, match="'discriminator' has the value 'batchnorm'; allowed: "
                                          "null or dcgan or residual"):
        load_config(None, {'model': 'resgan_lfw', 'discriminator': 'batchnorm'})


def test_resgan_lfw_has_no_published_weights():
    assert 'resgan_lfw' not in pretrained_model_list()
    with pytest.raises(PretrainedNotAvailable,
                       match="No pretrained weights are published for 'resgan_lfw'"):
        get_model('resgan_lfw', pretrained=True)


TINY = ['--config', RECIPE, '--dataset', 'lfw_sample', '--batch-size', '8', '--nz', '16',
        '--ngf', '8', '--ndf', '8', '--lr-decay-epochs', '0', '--eval-interval', '0',
        '--log-interval', '1', '--sample-interval', '0', '--checkpoint-interval', '3']


def test_the_recipe_trains_and_resumes_bit_identically(tmp_path):
    """A few iterations of configs/resgan_lfw.yaml (its objective, rates, moving average and
    mirroring; tiny widths, with skip-layer excitation) on the bundled faces:
    stopped after 3 and resumed to 6, the run ends with the same weights, spectral-norm vectors,
    BatchNorm statistics and moving average as a run of 6 in one go."""
    config = tmp_path / 'gated.yaml'
    with open(RECIPE) as f:
        recipe = f.read()
    config.write_text(recipe.replace('skip_excitation: false', 'skip_excitation: true'))
    tiny = [str(config) if arg == RECIPE else arg for arg in TINY]
    train_script.main(tiny + ['--iterations', '6', '--save-dir', str(tmp_path / 'whole')])
    train_script.main(tiny + ['--iterations', '3', '--save-dir', str(tmp_path / 'split')])
    train_script.main(['--resume', str(tmp_path / 'split'), '--iterations', '6'])
    for name in ('model.params', 'generator_ema.params'):
        assert_same_parameters(tmp_path / 'whole' / name, tmp_path / 'split' / name)
    history = json.loads((tmp_path / 'split' / 'history.json').read_text())
    assert [row['iteration'] for row in history] == list(range(1, 7))
    # the run exports like any other (its moving average) and loads into the gated networks
    sha1, zip_path = export.main([str(tmp_path / 'whole'), '--out-dir', str(tmp_path / 'out'),
                                  '--dtype', 'float32'])
    assert os.path.basename(zip_path) == 'resgan_lfw-%s.zip' % sha1[:8]
    net = get_model('resgan_lfw', nz=16, ngf=8, ndf=8, skip_excitation=True)
    net.load_parameters(zip_path[:-4] + '.params')
    assert net.generate(2, seed=0).shape == (2, 3, 64, 64)
