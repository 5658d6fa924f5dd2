"""GAN objectives: per-sample values and input gradients against hand-computed ones."""
import mxnet as mx
import numpy as np
import pytest

from gluoncv_gan.loss import get_objective, objective_names

# Points away from kinks: Gluon's sigmoid cross-entropy gives the subgradient -1 instead of
# -0.5 at a logit of exactly 0 (it is written with relu and abs), and hinge has kinks at +-1.
REAL = np.array([-2.0, -0.25, 0.5, 3.0])
FAKE = np.array([-1.5, 0.1, 0.25, 2.0])


def softplus(x):
    return np.log1p(np.exp(x))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def relu_step(x):
    return (x > 0).astype(np.float64)


# name: (d_loss(r, f), d d_loss/dr, d d_loss/df, g_loss(f), d g_loss/df)
EXPECTED = {
    'vanilla': (lambda r, f: softplus(-r) + softplus(f), lambda r: sigmoid(r) - 1,
                lambda f: sigmoid(f), lambda f: softplus(-f), lambda f: sigmoid(f) - 1),
    'minimax': (lambda r, f: softplus(-r) + softplus(f), lambda r: sigmoid(r) - 1,
                lambda f: sigmoid(f), lambda f: -softplus(f), lambda f: -sigmoid(f)),
    'lsgan': (lambda r, f: 0.5 * (r - 1) ** 2 + 0.5 * f ** 2, lambda r: r - 1, lambda f: f,
              lambda f: 0.5 * (f - 1) ** 2, lambda f: f - 1),
    'hinge': (lambda r, f: np.maximum(0, 1 - r) + np.maximum(0, 1 + f),
              lambda r: -relu_step(1 - r), lambda f: relu_step(1 + f),
              lambda f: -f, lambda f: -np.ones_like(f)),
    'wgan': (lambda r, f: f - r, lambda r: -np.ones_like(r), lambda f: np.ones_like(f),
             lambda f: -f, lambda f: -np.ones_like(f)),
}


def test_every_objective_is_tested_and_selectable():
    assert sorted(EXPECTED) == objective_names()
    with pytest.raises(ValueError, match='choose one of: hinge, lsgan, minimax, vanilla, wgan'):
        get_objective('wgan-gp')


def test_hand_computed_values_at_a_few_points():
    r, f = mx.nd.array([0.0, 2.0]), mx.nd.array([1.0, -1.0])
    lsgan, hinge, wgan = (get_objective(n) for n in ('lsgan', 'hinge', 'wgan'))
    # lsgan: 0.5*(0-1)^2 + 0.5*1^2 = 1; 0.5*(2-1)^2 + 0.5*(-1)^2 = 1
    np.testing.assert_allclose(lsgan.d_loss(r, f).asnumpy(), [1.0, 1.0])
    np.testing.assert_allclose(lsgan.g_loss(f).asnumpy(), [0.0, 2.0])
    # hinge: relu(1-0) + relu(1+1) = 3; relu(1-2) + relu(1-1) = 0
    np.testing.assert_allclose(hinge.d_loss(r, f).asnumpy(), [3.0, 0.0])
    np.testing.assert_allclose(hinge.g_loss(f).asnumpy(), [-1.0, 1.0])
    np.testing.assert_allclose(wgan.d_loss(r, f).asnumpy(), [1.0, -3.0])
    # minimax: -BCE(0, label 0) = -log 2
    minimax = get_objective('minimax')
    np.testing.assert_allclose(minimax.g_loss(mx.nd.array([0.0])).asnumpy(), [-np.log(2)],
                               rtol=1e-6)


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_values_and_input_gradients(name):
    objective = get_objective(name)
    d_value, d_grad_real, d_grad_fake, g_value, g_grad = EXPECTED[name]
    real, fake = mx.nd.array(REAL), mx.nd.array(FAKE)
    real.attach_grad()
    fake.attach_grad()
    with mx.autograd.record():
        d_loss = objective.d_loss(real, fake)
    d_loss.backward()
    assert d_loss.shape == (4,)  # per sample
    np.testing.assert_allclose(d_loss.asnumpy(), d_value(REAL, FAKE), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(real.grad.asnumpy(), d_grad_real(REAL), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fake.grad.asnumpy(), d_grad_fake(FAKE), rtol=1e-5, atol=1e-6)

    fake = mx.nd.array(FAKE)
    fake.attach_grad()
    with mx.autograd.record():
        g_loss = objective.g_loss(fake)
    g_loss.backward()
    assert g_loss.shape == (4,)
    np.testing.assert_allclose(g_loss.asnumpy(), g_value(FAKE), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fake.grad.asnumpy(), g_grad(FAKE), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name, scores, decisions', [
    ('vanilla', sigmoid(REAL), [0, 0, 1, 1]),     # a probability; real when the logit > 0
    ('minimax', sigmoid(REAL), [0, 0, 1, 1]),
    ('lsgan', REAL, [0, 0, 0, 1]),                # regresses to 1/0: real above 0.5
    ('hinge', REAL, [0, 0, 1, 1]),                # raw critic score: real when positive
    ('wgan', REAL, [0, 0, 1, 1]),
])
def test_score_and_decision_for_the_metrics(name, scores, decisions):
    objective = get_objective(name)
    out = mx.nd.array(REAL)
    np.testing.assert_allclose(objective.prob(out).asnumpy(), scores, rtol=1e-6)
    np.testing.assert_array_equal(objective.is_real(out).asnumpy(), decisions)
