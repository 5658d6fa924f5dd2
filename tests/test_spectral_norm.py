"""Spectral normalisation: the power-iteration estimate, its state, hybridized and not."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

from gluoncv_gan.model_zoo import DCGANDiscriminator
from gluoncv_gan.nn import SNConv2D, spectral_norm_sigma


def largest_singular_value(weight):
    matrix = weight.asnumpy().reshape(weight.shape[0], -1)
    return np.linalg.svd(matrix, compute_uv=False)[0]


def train_forwards(block, x, times):
    for _ in range(times):
        with autograd.record():
            block(x)


def sn_layers(block):
    return [b for b in _walk(block) if isinstance(b, SNConv2D)]


def _walk(block):
    yield block
    for child in block._children.values():
        for sub in _walk(child):
            yield sub


def small_layer(seed=0):
    mx.random.seed(seed)
    layer = SNConv2D(6, 3, 1, 1, in_channels=4)
    layer.initialize(mx.init.Normal(0.5))
    return layer


@pytest.mark.parametrize('hybridize', [False, True])
def test_layer_sigma_matches_svd_after_power_iterations(hybridize):
    layer = small_layer()
    if hybridize:
        layer.hybridize(static_alloc=True, static_shape=True)
    x = mx.nd.random.normal(shape=(2, 4, 5, 5))
    u0 = layer.u.data().asnumpy().copy()
    assert np.linalg.norm(u0) == pytest.approx(1.0, rel=1e-5)  # a unit vector from the start
    train_forwards(layer, x, 50)
    assert not np.allclose(layer.u.data().asnumpy(), u0)
    assert layer.sigma() == pytest.approx(largest_singular_value(layer.weight.data()), rel=1e-4)


@pytest.mark.parametrize('hybridize', [False, True])
def test_discriminator_layers_converge_inside_a_hybridized_or_plain_network(hybridize):
    mx.random.seed(1)
    disc = DCGANDiscriminator(ndf=8, resolution=16, norm='spectral')
    disc.initialize(mx.init.Normal(0.3))
    if hybridize:
        disc.hybridize(static_alloc=True, static_shape=True)
    layers = sn_layers(disc)
    assert len(layers) == 3
    train_forwards(disc, mx.nd.random.normal(shape=(2, 3, 16, 16)), 50)
    for layer in layers:
        assert layer.sigma() == pytest.approx(largest_singular_value(layer.weight.data()),
                                              rel=1e-4)


def test_one_step_per_training_forward_and_none_in_inference():
    plain, hybrid = small_layer(), small_layer()
    hybrid.hybridize(static_alloc=True, static_shape=True)
    x = mx.nd.random.normal(shape=(2, 4, 5, 5))
    for _ in range(3):
        with autograd.train_mode():
            plain(x)
        with autograd.record():
            hybrid(x)
    np.testing.assert_allclose(plain.u.data().asnumpy(), hybrid.u.data().asnumpy(), rtol=1e-5)
    before = hybrid.u.data().asnumpy().copy()
    hybrid(x)  # inference mode (the default outside record)
    with autograd.predict_mode():
        plain(x)
    np.testing.assert_array_equal(hybrid.u.data().asnumpy(), before)
    np.testing.assert_allclose(plain.u.data().asnumpy(), before, rtol=1e-5)


def test_output_is_the_convolution_with_the_normalised_weight():
    layer = small_layer()
    layer.bias.set_data(mx.nd.array(np.arange(6) * 0.1))
    train_forwards(layer, mx.nd.ones((1, 4, 5, 5)), 2)
    x = mx.nd.random.normal(shape=(2, 4, 5, 5))
    weight, u = layer.weight.data(), layer.u.data()
    sigma = spectral_norm_sigma(weight, u)
    expected = mx.nd.Convolution(x, weight / sigma, layer.bias.data(), kernel=(3, 3),
                                 pad=(1, 1), num_filter=6)
    np.testing.assert_allclose(layer(x).asnumpy(), expected.asnumpy(), rtol=1e-5, atol=1e-6)
    # the estimate is linear in the weight for a fixed u: scaling W changes nothing
    layer.weight.set_data(weight * 3)
    np.testing.assert_allclose(layer(x).asnumpy(), expected.asnumpy(), rtol=1e-5, atol=1e-6)


def test_u_is_saved_and_restored(tmp_path):
    mx.random.seed(2)
    disc = DCGANDiscriminator(ndf=8, resolution=16, norm='spectral')
    disc.initialize(mx.init.Normal(0.3))
    train_forwards(disc, mx.nd.random.normal(shape=(2, 3, 16, 16)), 5)
    path = str(tmp_path / 'd.params')
    disc.save_parameters(path)
    saved = mx.nd.load(path)
    assert {'features.0.u', 'features.2.u', 'output.u'} <= set(saved)
    assert all(saved[k].shape == (1, c) for k, c in (('features.0.u', 8), ('output.u', 1)))
    other = DCGANDiscriminator(ndf=8, resolution=16, norm='spectral')
    other.initialize(mx.init.Normal(0.3))
    other.load_parameters(path)
    for a, b in zip(sn_layers(disc), sn_layers(other)):
        np.testing.assert_array_equal(a.u.data().asnumpy(), b.u.data().asnumpy())
    x = mx.nd.random.normal(shape=(2, 3, 16, 16))
    np.testing.assert_array_equal(disc(x).asnumpy(), other(x).asnumpy())


def test_weight_gradients_agree_hybridized_and_not_with_two_forwards_before_backward():
    # u takes a step before the second forward: the first forward's backward must still use
    # the u it ran with (the training loop runs D on real and on fake images, then backward)
    grads = []
    for hybridize in (False, True):
        mx.random.seed(3)
        disc = DCGANDiscriminator(ndf=8, resolution=16, norm='spectral')
        disc.initialize(mx.init.Normal(0.3))
        if hybridize:
            disc.hybridize(static_alloc=True, static_shape=True)
        rng = np.random.RandomState(0)
        a, b = (mx.nd.array(rng.standard_normal((2, 3, 16, 16))) for _ in range(2))
        with autograd.record():
            loss = disc(a).sum() - 2 * disc(b).sum()
        loss.backward()
        grads.append({k: p.grad().asnumpy().copy()
                      for k, p in disc._collect_params_with_prefix().items()
                      if p.grad_req != 'null'})
    for key in grads[0]:
        np.testing.assert_allclose(grads[0][key], grads[1][key], rtol=1e-4, atol=1e-6,
                                   err_msg=key)


@pytest.mark.parametrize('hybridized', ['network', 'features', 'layer', 'none'])
def test_one_step_per_forward_whatever_part_is_hybridized(hybridized):
    mx.random.seed(4)
    disc = DCGANDiscriminator(ndf=8, resolution=16, norm='spectral')
    disc.initialize(mx.init.Normal(0.3))
    reference = [layer.u.data().asnumpy().copy() for layer in sn_layers(disc)]
    for layer in sn_layers(disc):  # two steps, by hand
        for _ in range(2):
            layer.update_u(mx.cpu())
    expected = [layer.u.data().asnumpy().copy() for layer in sn_layers(disc)]
    for layer, u in zip(sn_layers(disc), reference):
        layer.u.set_data(mx.nd.array(u))
    part = {'network': disc, 'features': disc.features, 'layer': disc.features[0],
            'none': None}[hybridized]
    if part is not None:
        part.hybridize(static_alloc=True, static_shape=True)
    train_forwards(disc, mx.nd.random.normal(shape=(2, 3, 16, 16)), 2)
    for layer, u in zip(sn_layers(disc), expected):
        np.testing.assert_allclose(layer.u.data().asnumpy(), u, rtol=1e-5, atol=1e-7)
