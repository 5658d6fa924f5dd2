"""The recipes of the tutorial's exercises: n_critic, weight clipping, TTUR, objectives, 128x128,
and the comparison runner."""
import json
import logging
import os
import shutil

import mxnet as mx
import numpy as np
import pytest
import yaml

from gluoncv_gan import compare
from gluoncv_gan import train as train_script
from gluoncv_gan.data import LFWSample
from gluoncv_gan.data.loader import CachedBatchLoader
from gluoncv_gan.estimator import GANEstimator, LearningRateDecayHandler
from gluoncv_gan.loss import get_objective
from gluoncv_gan.model_zoo import get_model
from gluoncv_gan.pipeline import training
from gluoncv_gan.pipeline.build import build_trainers
from gluoncv_gan.utils.config import ConfigError, load_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ['--dataset', 'lfw_sample', '--batch-size', '8', '--ngf', '8', '--ndf', '8', '--nz', '16']


def tiny_estimator(model='dcgan_lfw', loss='vanilla', lr=2e-4, **kwargs):
    net = get_model(model, nz=16, ngf=8, ndf=8)
    net.generator.hybridize(static_alloc=True, static_shape=True)
    net.discriminator.hybridize(static_alloc=True, static_shape=True)
    trainers = [mx.gluon.Trainer(block.collect_params(), 'adam',
                                 {'learning_rate': lr, 'beta1': 0.5})
                for block in (net.generator, net.discriminator)]
    return GANEstimator(net, get_objective(loss), trainers[0], trainers[1], seed=1, **kwargs)


def count_steps(estimator):
    steps = {'g': 0, 'd': 0}
    for key, trainer in (('g', estimator.trainer_g), ('d', estimator.trainer_d)):
        def counting_step(*args, _original=trainer.step, _key=key, **kwargs):
            steps[_key] += 1
            return _original(*args, **kwargs)
        trainer.step = counting_step
    return steps


def test_n_critic_steps_the_discriminator_that_many_times_per_generator_step():
    est = tiny_estimator(n_critic=3)
    steps = count_steps(est)
    g_before = {k: p.data().asnumpy().copy() for k, p in est.net.generator.collect_params().items()}
    est.fit(CachedBatchLoader(LFWSample(), 8, seed=0), total_iterations=2)
    assert steps == {'g': 0, 'd': 2}
    for key, param in est.net.generator.collect_params().items():
        if param.grad_req != 'null':  # no generator step yet: its weights did not move
            np.testing.assert_array_equal(param.data().asnumpy(), g_before[key])
    est.fit(CachedBatchLoader(LFWSample(), 8, seed=0), total_iterations=6)
    assert steps == {'g': 2, 'd': 6} and est.iteration == 6
    metrics = {m.name.replace('training ', ''): m for m in est.train_metrics}
    # in the second fit (iterations 2-5, metrics reset at its start) g_loss averages over the
    # generator steps only (iterations 2 and 5), d_loss over every iteration
    assert metrics['g_loss'].global_num_inst == 2 * 8
    assert metrics['d_loss'].global_num_inst == 4 * 8
    assert np.isfinite(metrics['g_loss'].get_global()[1])


def test_weight_clipping_keeps_every_discriminator_parameter_in_bounds():
    clip = 0.01
    est = tiny_estimator(loss='wgan', lr=5e-3, weight_clip=clip)
    est.fit(CachedBatchLoader(LFWSample(), 8, seed=0), total_iterations=3)
    at_bound = 0
    for param in est.net.discriminator.collect_params().values():
        if param.grad_req == 'null':
            continue  # BatchNorm running statistics are not weights
        values = np.abs(param.data().asnumpy())
        assert values.max() <= clip + 1e-7, param.name
        at_bound += int((values >= clip - 1e-7).sum())
    assert at_bound > 100
    # the generator is not clipped
    assert max(np.abs(p.data().asnumpy()).max()
               for p in est.net.generator.collect_params().values()) > 0.05


def test_two_learning_rates_and_rmsprop():
    net = get_model('dcgan_lfw', nz=16, ngf=8, ndf=8)
    config = load_config(None, {'lr': 1e-4, 'lr_d': 4e-4, 'beta1': 0.0, 'beta2': 0.9})
    trainer_g, trainer_d = build_trainers(net, config)
    assert (trainer_g.learning_rate, trainer_d.learning_rate) == (1e-4, 4e-4)
    assert trainer_d._optimizer.beta1 == 0.0 and trainer_d._optimizer.beta2 == 0.9
    config = load_config(None, {'optimizer': 'rmsprop', 'lr': 5e-5, 'beta2': 0.99})
    trainer_g, trainer_d = build_trainers(net, config)
    assert isinstance(trainer_d._optimizer, mx.optimizer.RMSProp)
    assert trainer_d.learning_rate == trainer_g.learning_rate == 5e-5  # lr_d null: lr
    assert trainer_d._optimizer.gamma1 == 0.99


@pytest.mark.parametrize('model, loss, flags', [
    ('lsgan_lfw', 'lsgan', []),
    ('wgan_lfw', 'wgan', ['--n-critic', '2', '--weight-clip', '0.01', '--optimizer', 'rmsprop',
                          '--lr', '5e-5', '--beta2', '0.99']),
    ('sngan_lfw', 'hinge', ['--lr-d', '4e-4']),
    ('dcgan_lfw', 'minimax', []),
])
def test_tiny_training_run_per_objective(tmp_path, model, loss, flags):
    run = tmp_path / 'run'
    train_script.main(SMALL + ['--model', model, '--loss', loss, '--iterations', '4',
                               '--log-interval', '4', '--save-dir', str(run)] + flags)
    config = yaml.safe_load((run / 'config.yaml').read_text())
    assert (config['model'], config['loss']) == (model, loss)
    history = json.loads((run / 'history.json').read_text())
    assert history[-1]['iteration'] == 4
    assert np.isfinite(history[-1]['d_loss']) and np.isfinite(history[-1]['g_loss'])
    saved = mx.nd.load(str(run / 'model.params'))
    assert all(np.isfinite(v.asnumpy()).all() for v in saved.values())
    assert ('discriminator.features.0.u' in saved) == (model in ('sngan_lfw', 'lsgan_lfw'))
    net = get_model(model, nz=16, ngf=8, ndf=8)
    net.load_parameters(str(run / 'model.params'))


def test_dcgan_lfw_128_trains_end_to_end_on_128_pixel_data(tmp_path):
    run = tmp_path / 'run'
    train_script.main(SMALL + ['--model', 'dcgan_lfw_128', '--image-size', '128',
                               '--iterations', '2', '--save-dir', str(run)])
    assert 'Data: lfw_sample, 300 images of 128x128' in (run / 'train.log').read_text()
    net = get_model('dcgan_lfw_128', nz=16, ngf=8, ndf=8)
    net.load_parameters(str(run / 'model.params'))
    assert net.generate(2, seed=0).shape == (2, 3, 128, 128)
    with pytest.raises(SystemExit):  # a 64x64 model on 128x128 data is refused
        train_script.main(SMALL + ['--model', 'dcgan_lfw', '--image-size', '128',
                                   '--iterations', '1', '--save-dir', str(tmp_path / 'bad')])


@pytest.mark.parametrize('name, model, loss', [
    ('dcgan_lfw_128', 'dcgan_lfw_128', 'vanilla'), ('lsgan_lfw', 'lsgan_lfw', 'lsgan'),
    ('wgan_lfw', 'wgan_lfw', 'wgan'), ('sngan_lfw', 'sngan_lfw', 'hinge'),
    ('dcgan_lfw_long', 'dcgan_lfw', 'vanilla')])
def test_recipe_configs(name, model, loss):
    config = load_config(os.path.join(REPO, 'configs', name + '.yaml'))
    assert (config['model'], config['loss']) == (model, loss)
    assert config['image_size'] == get_model(model).resolution
    # the objective is the recipe's choice, not the model's: any pair combines
    assert load_config(None, {'model': model, 'loss': 'vanilla'})['loss'] == 'vanilla'


def test_the_published_recipe_decays_over_its_last_twenty_of_sixty_epochs():
    config = load_config(os.path.join(REPO, 'configs', 'dcgan_lfw_long.yaml'))
    assert (config['epochs'], config['lr_decay_epochs']) == (60, 20)
    assert config['checkpoint_interval'] == 0 and config['keep_checkpoints'] >= 5  # --average 5
    tutorial = load_config(os.path.join(REPO, 'configs', 'dcgan_lfw.yaml'))
    for key in ('model', 'loss', 'batch_size', 'lr', 'beta1', 'beta2', 'nz', 'ngf', 'ndf'):
        assert config[key] == tutorial[key], key


def write_recipe(path, **values):
    config = dict(dataset='lfw_sample', nz=16, ngf=8, ndf=8, batch_size=8, log_interval=2,
                  sample_interval=0, checkpoint_interval=2)
    config.update(values)
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_compare_trains_each_recipe_on_the_same_images_and_resumes(tmp_path):
    recipes = [write_recipe(tmp_path / 'tiny_dcgan.yaml', model='dcgan_lfw', ema_decay=0.9),
               write_recipe(tmp_path / 'tiny_wgan.yaml', model='wgan_lfw', loss='wgan',
                            n_critic=2, weight_clip=0.01, batch_size=16)]
    out = tmp_path / 'cmp'
    args = ['--recipes'] + recipes + ['--images', '64', '--out-dir', str(out),
                                      '--eval-samples', '20']
    compare.main(args)
    summary = json.loads((out / 'compare.json').read_text())
    rows = {r['name']: r for r in summary['results']}
    assert rows['tiny_dcgan']['training']['iterations'] == 8   # 64 images in batches of 8
    assert rows['tiny_wgan']['training']['iterations'] == 4    # ... and in batches of 16
    assert all(r['training']['images_seen'] == 64 for r in rows.values())
    assert rows['tiny_dcgan']['training']['samples_per_second'] > 0
    assert [e['generator'] for e in rows['tiny_dcgan']['evaluations']] == ['final', 'ema']
    for row in rows.values():
        for ev in row['evaluations']:
            assert ev['swd'] > 0 and 0 <= ev['face_rate'] <= 1 and ev['diversity'] >= 0
    table = (out / 'compare.md').read_text()
    assert '| tiny_dcgan (EMA) | dcgan_lfw |' in table
    assert 'wgan (n_critic 2, clip 0.01)' in table and 'python -m gluoncv_gan.compare' in table
    assert not (out / 'tiny_dcgan' / 'evaluation.json').exists()  # no per-epoch evaluation

    # a rerun skips finished recipes ...
    stamp = os.path.getmtime(out / 'tiny_wgan' / 'model.params')
    compare.main(args)
    assert os.path.getmtime(out / 'tiny_wgan' / 'model.params') == stamp
    assert 'finished earlier' in (out / 'compare.log').read_text()
    # ... and an interrupted one resumes from its latest checkpoint
    run = out / 'tiny_dcgan'
    for name in (compare.RESULT_FILE, compare.TRAINED_FILE, 'model.params'):
        os.remove(str(run / name))
    shutil.rmtree(str(run / 'checkpoints' / 'iter-00000008'))
    compare.main(args)
    again = json.loads((run / compare.RESULT_FILE).read_text())
    assert again['training']['resumed_from'].endswith('iter-00000006')
    assert (again['training']['iterations'], again['training']['timed_iterations']) == (8, 2)


def test_compare_lr_decay_epochs_replaces_a_decay_longer_than_the_budget(tmp_path, capsys):
    """A recipe decaying over more epochs than --images gives is refused in one line naming
    --lr-decay-epochs; with the flag every recipe decays over the budget's last N epochs."""
    recipe = write_recipe(tmp_path / 'tiny_decay.yaml', model='dcgan_lfw', epochs=40,
                          lr_decay_epochs=10)  # 300 faces in batches of 8: 37 per epoch
    args = ['--recipes', recipe, '--images', '160', '--eval-samples', '20']
    with pytest.raises(SystemExit) as info:
        compare.main(args + ['--out-dir', str(tmp_path / 'refused')])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: lr_decay_epochs (10 epochs') and '--lr-decay-epochs' in err
    assert len(err.splitlines()) == 1
    assert err in (tmp_path / 'refused' / 'compare.log').read_text()
    assert compare.recipe_config(recipe, 160, lr_decay_epochs=0)['lr_decay_epochs'] == 0
    out = tmp_path / 'cmp'
    compare.main(args + ['--out-dir', str(out), '--lr-decay-epochs', '0'])
    saved = yaml.safe_load((out / 'tiny_decay' / 'config.yaml').read_text())
    assert saved['lr_decay_epochs'] == 0 and saved['iterations'] == 20


def test_learning_rate_decay_is_linear_to_zero_over_the_last_iterations():
    trainers = [mx.gluon.Trainer(get_model('dcgan_lfw', nz=16, ngf=8, ndf=8)
                                 .generator.collect_params(), 'adam', {'learning_rate': lr})
                for lr in (2e-4, 4e-4)]
    handler = LearningRateDecayHandler(trainers, [2e-4, 4e-4], total_iterations=10,
                                       decay_iterations=4)
    assert [handler.factor(i) for i in range(10)] == [1, 1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25]
    handler.batch_begin(type('Estimator', (), {'iteration': 8})())
    assert [t.learning_rate for t in trainers] == pytest.approx([1e-4, 2e-4])
    handler.batch_begin(type('Estimator', (), {'iteration': 2})())
    assert [t.learning_rate for t in trainers] == pytest.approx([2e-4, 4e-4])
    with pytest.raises(ValueError, match='decay_iterations must be positive'):
        LearningRateDecayHandler(trainers, [1, 1], 10, 0)


def decaying_config(**values):
    return load_config(None, dict(dict(dataset='lfw_sample', batch_size=8, nz=16, ngf=8, ndf=8,
                                       epochs=2, lr_decay_epochs=1, lr=2e-4, lr_d=4e-4,
                                       log_interval=10, sample_interval=0, eval_interval=0,
                                       tensorboard=False, checkpoint_interval=0,
                                       keep_checkpoints=10), **values))


def test_lr_decay_epochs_ends_the_run_at_the_last_step_of_the_decay(tmp_path):
    logger = logging.getLogger('test_lr_decay')
    estimator = training.train(decaying_config(), str(tmp_path / 'run'), None, logger)
    per_epoch = len(LFWSample()) // 8
    assert estimator.iteration == 2 * per_epoch
    # the last iteration ran at 1 / (iterations of one epoch) of the base rates
    assert estimator.trainer_g.learning_rate == pytest.approx(2e-4 / per_epoch)
    assert estimator.trainer_d.learning_rate == pytest.approx(4e-4 / per_epoch)


def test_a_decay_longer_than_the_run_is_refused(tmp_path):
    logger = logging.getLogger('test_lr_decay')
    with pytest.raises(ConfigError, match='longer than the run'):
        training.train(decaying_config(lr_decay_epochs=3), str(tmp_path / 'run'), None, logger)


def test_a_resumed_run_continues_the_same_learning_rate_decay(tmp_path):
    logger = logging.getLogger('test_lr_decay')
    full = tmp_path / 'full'
    training.train(decaying_config(checkpoint_interval=20), str(full), None, logger)
    middle = full / 'checkpoints' / 'iter-00000060'  # in the decaying second epoch
    assert middle.is_dir()
    resumed = tmp_path / 'resumed'
    training.train(decaying_config(checkpoint_interval=20), str(resumed), str(middle), logger)
    want, got = mx.nd.load(str(full / 'model.params')), mx.nd.load(str(resumed / 'model.params'))
    assert sorted(want) == sorted(got)
    for key in want:
        np.testing.assert_array_equal(want[key].asnumpy(), got[key].asnumpy(), err_msg=key)
    # and the decay is what made them equal: without it the resumed half differs
    constant = tmp_path / 'constant'
    training.train(decaying_config(checkpoint_interval=20, lr_decay_epochs=0), str(constant),
                       str(middle), logger)
    differs = mx.nd.load(str(constant / 'model.params'))
    assert any(not np.array_equal(want[k].asnumpy(), differs[k].asnumpy()) for k in want)


def test_dist_async_refuses_a_learning_rate_decay(monkeypatch):
    from gluoncv_gan import distributed
    for name in distributed.PS_VARIABLES:
        monkeypatch.setenv(name, '1')
    config = load_config(None, {'kvstore': 'dist_async', 'lr_decay_epochs': 2})
    with pytest.raises(ConfigError, match='lr_decay_epochs'):
        distributed.setup(config)


def _low_frequency_spread(net, num=128, seed=5):
    """Std across ``num`` samples of the 8x8 average-pooled images, averaged over pixels.

    Real LFW faces give about 0.4; a generator collapsed to one texture gives almost 0."""
    images = net.generate(num, seed=seed).asnumpy()
    pooled = images.reshape(num, 3, 8, 8, 8, 8).mean(axis=(3, 5))
    return float(pooled.std(axis=0).mean())


@pytest.mark.timeout(900)  # each case trains for minutes: up to 270 s on two busy cores
@pytest.mark.parametrize('model, collapses', [('dcgan_lfw', True), ('lsgan_lfw', False)])
def test_least_squares_collapses_with_a_batchnorm_discriminator_only(tmp_path, model, collapses):
    """The LSGAN collapse signature: with the tutorial's BatchNorm discriminator the least-squares
    objective maps every latent to one texture (the 8x8 spread of its samples stays near 0);
    lsgan_lfw's spectrally normalised discriminator without BatchNorm does not collapse."""
    run = tmp_path / 'run'
    train_script.main(['--dataset', 'lfw_sample', '--batch-size', '32', '--ngf', '32', '--ndf',
                       '32', '--model', model, '--loss', 'lsgan', '--iterations', '100',
                       '--log-interval', '50', '--sample-interval', '0', '--eval-interval', '0',
                       '--checkpoint-interval', '0', '--save-dir', str(run)])
    net = get_model(model, ngf=32, ndf=32)
    net.load_parameters(str(run / 'model.params'))
    spread = _low_frequency_spread(net)
    if collapses:
        assert spread < 0.015, spread
    else:
        assert spread > 0.03, spread
