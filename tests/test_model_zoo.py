"""DCGAN blocks, named constructors and registration in GluonCV's model zoo."""
import hashlib

import mxnet as mx
import numpy as np
import pytest

import gluoncv_gan
from gluoncv_gan.model_zoo import (DCGAN, DCGANDiscriminator, DCGANGenerator, get_model,
                                   get_model_list, pretrained_model_list, register_with_gluoncv)


def num_params(block):
    return sum(int(np.prod(p.shape)) for p in block.collect_params().values())


def test_tutorial_parameter_counts():
    net = get_model('dcgan_lfw')
    assert num_params(net.generator) == 3578624
    assert num_params(net.discriminator) == 2767360


def test_tutorial_layer_list():
    gen = get_model('dcgan_lfw').generator
    convs = [b for b in list(gen.features) + list(gen.output)
             if isinstance(b, mx.gluon.nn.Conv2DTranspose)]
    shapes = [c.weight.shape for c in convs]
    assert shapes == [(100, 512, 4, 4), (512, 256, 4, 4), (256, 128, 4, 4), (128, 64, 4, 4),
                      (64, 3, 4, 4)]
    assert all(c.bias is None for c in convs)
    disc = get_model('dcgan_lfw').discriminator
    dconvs = [b for b in list(disc.features) if isinstance(b, mx.gluon.nn.Conv2D)]
    assert [c.weight.shape[0] for c in dconvs] == [64, 128, 256, 512]
    assert disc.output.weight.shape == (1, 512, 4, 4)


def test_128_model_is_the_tutorials_with_a_32_channel_block_at_128():
    net, tutorial = get_model('dcgan_lfw_128'), get_model('dcgan_lfw')
    gen = [b.weight.shape for b in list(net.generator.features) + list(net.generator.output)
           if isinstance(b, mx.gluon.nn.Conv2DTranspose)]
    assert gen == [(100, 512, 4, 4), (512, 256, 4, 4), (256, 128, 4, 4), (128, 64, 4, 4),
                   (64, 32, 4, 4), (32, 3, 4, 4)]
    disc = [b.weight.shape[0] for b in net.discriminator.features
            if isinstance(b, mx.gluon.nn.Conv2D)]
    assert disc == [32, 64, 128, 256, 512]
    # the extra blocks are all that is added to the tutorial's networks
    assert num_params(net.generator) - num_params(tutorial.generator) == \
        64 * 32 * 16 + 4 * 32 + 32 * 3 * 16 - 64 * 3 * 16
    assert num_params(net.discriminator) - num_params(tutorial.discriminator) == \
        3 * 32 * 16 + 32 * 64 * 16 + 4 * 64 - 3 * 64 * 16


@pytest.mark.parametrize('resolution', [64, 128])
def test_shapes_and_range(resolution):
    net = get_model('dcgan_lfw' if resolution == 64 else 'dcgan_lfw_128')
    z = mx.nd.random.normal(shape=(3, 100, 1, 1))
    x = net(z)
    assert x.shape == (3, 3, resolution, resolution)
    assert x.min().asscalar() >= -1 and x.max().asscalar() <= 1
    assert net.discriminator(x).shape == (3,)


def test_width_latent_channels_are_arguments():
    gen = DCGANGenerator(nz=16, ngf=8, channels=1, resolution=32)
    gen.initialize()
    assert gen(mx.nd.zeros((2, 16, 1, 1))).shape == (2, 1, 32, 32)
    disc = DCGANDiscriminator(ndf=8, channels=1, resolution=32)
    disc.initialize()
    assert disc(mx.nd.zeros((2, 1, 32, 32))).shape == (2,)
    with pytest.raises(ValueError, match='power of two'):
        DCGANGenerator(resolution=96)


def test_hybridized_matches_imperative():
    net = get_model('dcgan_lfw')
    z = net.sample_latent(4, seed=1)
    with mx.autograd.predict_mode():
        ref_x, ref_d = net(z).asnumpy(), net.discriminator(net(z)).asnumpy()
    net.hybridize(static_alloc=True, static_shape=True)
    with mx.autograd.predict_mode():
        x = net(z)
        d = net.discriminator(x)
    np.testing.assert_allclose(x.asnumpy(), ref_x, atol=1e-5)
    np.testing.assert_allclose(d.asnumpy(), ref_d, rtol=1e-4, atol=1e-5)


def test_initialisation_normal_002_and_batchnorm_identity():
    net = get_model('dcgan_lfw')
    w = net.generator.features[3].weight.data().asnumpy()
    assert abs(w.mean()) < 1e-3 and 0.018 < w.std() < 0.022
    gamma = net.generator.features[1].gamma.data().asnumpy()
    assert np.all(gamma == 1)


def test_generate_is_seeded_and_in_inference_mode():
    net = get_model('dcgan_lfw')
    a = net.generate(5, seed=3).asnumpy()
    b = net.generate(5, seed=3).asnumpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, net.generate(5, seed=4).asnumpy())
    # inference mode: BatchNorm uses running statistics, so one image does not depend on the others
    np.testing.assert_allclose(net.generate(1, seed=3).asnumpy()[0], a[0], atol=1e-5)
    # generating in several batches gives the same images
    np.testing.assert_allclose(net.generate(5, seed=3, batch_size=2).asnumpy(), a, atol=1e-6)


def test_pair_saves_and_loads_both_nets(tmp_path):
    net = get_model('dcgan_lfw')
    path = str(tmp_path / 'pair.params')
    net.save_parameters(path)
    other = get_model('dcgan_lfw')
    other.load_parameters(path)
    for a, b in zip(net.collect_params().values(), other.collect_params().values()):
        np.testing.assert_array_equal(a.data().asnumpy(), b.data().asnumpy())


def test_registered_in_gluoncv_model_zoo():
    import gluoncv
    assert 'dcgan_lfw' in gluoncv.model_zoo.get_model_list()
    assert 'dcgan_lfw_128' in gluoncv.model_zoo.get_model_list()
    assert isinstance(gluoncv.model_zoo.get_model('dcgan_lfw'), DCGAN)
    assert set(gluoncv_gan.get_model_list()) <= set(gluoncv.model_zoo.get_model_list())


def test_registration_never_overwrites_gluoncv_names(monkeypatch):
    from gluoncv.model_zoo import model_zoo as gcv_zoo
    sentinel = object()
    monkeypatch.setitem(gcv_zoo._models, 'dcgan_lfw', sentinel)
    resnet = gcv_zoo._models['resnet50_v1b']
    assert 'dcgan_lfw' not in register_with_gluoncv()
    assert gcv_zoo._models['dcgan_lfw'] is sentinel
    assert gcv_zoo._models['resnet50_v1b'] is resnet


def test_unknown_name_lists_what_exists():
    with pytest.raises(ValueError) as err:
        get_model('dcgan_nope')
    assert 'dcgan_nope' in str(err.value) and 'dcgan_lfw' in str(err.value)
    assert get_model_list() == sorted(get_model_list())


def test_unpublished_pretrained_fails_clearly(monkeypatch):
    from gluoncv_gan.model_zoo import model_store
    unpublished = [v for v in model_store._model_sha1_versions if v[1] != 'dcgan_lfw_128']
    monkeypatch.setattr(model_store, '_model_sha1_versions', unpublished)
    with pytest.raises(ValueError, match="No pretrained weights are published for 'dcgan_lfw_128'"):
        get_model('dcgan_lfw_128', pretrained=True)


PUBLISHED = pretrained_model_list()


def test_dcgan_lfw_is_published():
    assert 'dcgan_lfw' in PUBLISHED


@pytest.mark.parametrize('name', PUBLISHED)
def test_pretrained_loads_from_a_fresh_cache_without_network(name, mxnet_home, monkeypatch):
    """Every published name: weights from a fresh cache with no mirror (the clone's copy), the
    cached file's sha1 is the table's, images of the right shape and range, float32 weights."""
    from gluoncv_gan.model_zoo import model_store
    monkeypatch.delenv(model_store.REPO_ENV, raising=False)  # no mirror: the local copy only
    assert not (mxnet_home / 'models').exists()
    net = get_model(name, pretrained=True)
    cached = list((mxnet_home / 'models').iterdir())
    assert [p.name for p in cached] == ['%s-%s.params' % (name, model_store.short_hash(name))]
    with open(str(cached[0]), 'rb') as f:
        assert hashlib.sha1(f.read()).hexdigest() in model_store._versions(name)
    resolution = 128 if name.endswith('_128') else 64
    faces = net.generate(16, seed=0)
    assert faces.shape == (16, 3, resolution, resolution) and faces.dtype == np.float32
    values = faces.asnumpy()
    assert values.min() >= -1 and values.max() <= 1  # tanh output
    assert values.std() > 0.2  # real images, not a constant
    assert values.std(axis=0).mean() > 0.1  # different latents, different images
    # every parameter was loaded as float32 (the file stores float16)
    assert all(p.data().dtype == np.float32 for p in net.collect_params().values())
    # the same latents give the same faces from the cached copy
    again = get_model(name, pretrained=True)
    np.testing.assert_array_equal(again.generate(16, seed=0).asnumpy(), values)


RECIPE_NAMES = ['lsgan_lfw', 'wgan_lfw', 'sngan_lfw', 'dcgan_lfw_128', 'resgan_lfw']


@pytest.mark.parametrize('name', RECIPE_NAMES)
def test_recipe_names_build_run_and_round_trip_through_save_and_load(name, tmp_path):
    import gluoncv
    from gluoncv_gan.model_zoo.model_store import PretrainedNotAvailable
    resolution = 128 if name.endswith('_128') else 64
    net = gluoncv.model_zoo.get_model(name, pretrained=False)  # registered in GluonCV too
    z = net.sample_latent(2, seed=0)
    with mx.autograd.record():  # training-mode passes: BatchNorm statistics, spectral-norm state
        fake = net(z)
        net.discriminator(fake)
    with mx.autograd.predict_mode():
        images, scores = net(z), net.discriminator(net(z))
    assert images.shape == (2, 3, resolution, resolution) and scores.shape == (2,)
    path = str(tmp_path / 'pair.params')
    net.save_parameters(path)
    other = get_model(name)
    other.load_parameters(path)
    with mx.autograd.predict_mode():
        np.testing.assert_array_equal(other(z).asnumpy(), images.asnumpy())
        np.testing.assert_array_equal(other.discriminator(images).asnumpy(), scores.asnumpy())
    if name not in PUBLISHED:
        with pytest.raises(PretrainedNotAvailable,
                           match='No pretrained weights are published for %r' % name):
            get_model(name, pretrained=True)


def test_sngan_discriminator_is_spectral_without_batchnorm_and_dcgan_is_unchanged():
    from gluoncv_gan.nn import SNConv2D
    disc = get_model('sngan_lfw').discriminator
    blocks = list(disc.features) + [disc.output]
    assert not any(isinstance(b, mx.gluon.nn.BatchNorm) for b in blocks)
    convs = [b for b in blocks if isinstance(b, SNConv2D)]
    assert len(convs) == 5 and not any(isinstance(b, mx.gluon.nn.Conv2D) for b in blocks)
    # the published dcgan_lfw weights load by these names: the default must not change
    names = sorted(get_model('dcgan_lfw').discriminator._collect_params_with_prefix())
    assert names == sorted(['features.0.weight', 'output.weight'] + [
        'features.%d.%s' % (i, p) for i in (2, 5, 8) for p in ('weight',)] + [
        'features.%d.%s' % (i, p) for i in (3, 6, 9)
        for p in ('gamma', 'beta', 'running_mean', 'running_var')])
    with pytest.raises(ValueError, match="norm must be 'batch' or 'spectral'"):
        DCGANDiscriminator(norm='instance')


def test_constructors_register_themselves():
    from gluoncv_gan.model_zoo import dcgan, recipes, resgan
    from gluoncv_gan.model_zoo.registry import get_constructor, list_models
    defined = {name: getattr(module, name) for module in (dcgan, recipes, resgan)
               for name in module.__all__ if name.endswith('_lfw') or '_lfw_' in name}
    assert list_models() == sorted(defined) == get_model_list()
    for name, constructor in defined.items():
        assert get_constructor(name) is constructor
        assert get_constructor(name.upper()) is constructor


def test_a_name_registered_twice_is_refused():
    from gluoncv_gan.utils.name_registry import Registry
    registry = Registry('model')

    @registry.register
    def tiny():
        return 'first'
    registry.register(tiny)  # the same constructor again is harmless
    with pytest.raises(ValueError, match="model name 'tiny' is registered twice"):
        registry.register(lambda: 'second', name='TINY')
    assert registry.get('tiny')() == 'first'
    with pytest.raises(ValueError, match="unknown model 'huge'; choose one of: tiny"):
        registry.get('huge')


def test_constructor_docstrings_have_the_same_numpy_sections():
    import inspect
    from gluoncv_gan.model_zoo.registry import get_constructor, list_models
    for name in list_models():
        doc = inspect.getdoc(get_constructor(name))
        sections = [line for line in doc.splitlines() if line and set(line) == {'-'}]
        assert len(sections) == 2, name
        parameters = doc.split('Parameters\n----------\n')[1].split('Returns\n-------\n')
        assert len(parameters) == 2, name
        documented = [line.split(' : ')[0] for line in parameters[0].splitlines()
                      if line and not line.startswith(' ')]
        assert documented == ['pretrained', 'ctx', 'root', '**kwargs'], name
        pair = 'ResGAN' if name.startswith('resgan') else 'DCGAN'
        assert parameters[1].startswith(pair + '\n'), name
        assert ('Passed to :class:`%s`' % pair) in parameters[0], name
