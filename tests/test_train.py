"""GAN estimator, batch processor, handlers and the training script."""
import json
import os
import signal
import subprocess
import sys

import cv2
import mxnet as mx
import numpy as np
import pytest
import yaml

from gluoncv_gan import train as train_script
from gluoncv_gan.data import LFWSample
from gluoncv_gan.data.loader import CachedBatchLoader
from gluoncv_gan.estimator import GANEstimator, gan_metrics
from gluoncv_gan.estimator.checkpoint import list_checkpoints
from gluoncv_gan.loss import VanillaGANLoss
from gluoncv_gan.model_zoo import get_model
from gluoncv_gan.utils.config import ConfigError, load_config
from output_reader import OutputReader
from params_check import assert_same_parameters

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ['--dataset', 'lfw_sample', '--batch-size', '8', '--ngf', '8', '--ndf', '8', '--nz', '16']


def small_estimator(hybridize=True, ctx=mx.cpu()):
    net = get_model('dcgan_lfw', nz=16, ngf=8, ndf=8, ctx=ctx)
    if hybridize:
        net.generator.hybridize(static_alloc=True, static_shape=True)
        net.discriminator.hybridize(static_alloc=True, static_shape=True)
    opts = {'learning_rate': 2e-4, 'beta1': 0.5}
    trainer_g = mx.gluon.Trainer(net.generator.collect_params(), 'adam', dict(opts))
    trainer_d = mx.gluon.Trainer(net.discriminator.collect_params(), 'adam', dict(opts))
    return GANEstimator(net, VanillaGANLoss(), trainer_g, trainer_d, context=ctx, seed=3)


def snapshot(block):
    return {k: v.data().asnumpy().copy() for k, v in block.collect_params().items()}


def test_one_iteration_steps_each_net_exactly_once():
    est = small_estimator()
    loader = CachedBatchLoader(LFWSample(), 8, seed=0)
    steps = {'g': 0, 'd': 0}
    for key, trainer in (('g', est.trainer_g), ('d', est.trainer_d)):
        original = trainer.step

        def counting_step(*args, _original=original, _key=key, **kwargs):
            steps[_key] += 1
            return _original(*args, **kwargs)
        trainer.step = counting_step
    before_g, before_d = snapshot(est.net.generator), snapshot(est.net.discriminator)
    est.fit(loader, total_iterations=1)
    assert steps == {'g': 1, 'd': 1}
    assert est.iteration == 1 and est.batch == 1 and est.epoch == 0
    after_g, after_d = snapshot(est.net.generator), snapshot(est.net.discriminator)
    for before, after in ((before_g, after_g), (before_d, after_d)):
        changed = [k for k in before if k.endswith('weight') and not np.array_equal(before[k], after[k])]
        weights = [k for k in before if k.endswith('weight')]
        assert changed == weights  # every weight of both nets moved


def test_metrics_report_losses_accuracy_and_d_outputs():
    est = small_estimator()
    est.fit(CachedBatchLoader(LFWSample(), 8, seed=0), total_iterations=3)
    values = {m.name.replace('training ', ''): m.get()[1] for m in est.train_metrics}
    assert set(values) >= {'d_loss', 'g_loss', 'd_acc', 'd_acc_real', 'd_acc_fake', 'D(x)', 'D(G(z))'}
    assert values['d_loss'] > 0 and values['g_loss'] > 0
    assert 0 <= values['d_acc'] <= 1 and 0 < values['D(x)'] < 1
    assert values['d_acc'] == pytest.approx((values['d_acc_real'] + values['d_acc_fake']) / 2)


def test_gan_metric_state_round_trip():
    metric = gan_metrics()[0]
    out = type('Out', (), {'d_loss': [mx.nd.array([1.0, 3.0])]})()
    metric.update(None, out)
    state = metric.get_state()
    other = gan_metrics()[0]
    other.set_state(state)
    assert other.get()[1] == metric.get()[1] == 2.0
    other.update(None, out)
    assert other.get()[1] == 2.0 and other.num_inst == 4


def test_vanilla_loss_values():
    loss = VanillaGANLoss()
    real, fake = mx.nd.array([0.0, 2.0]), mx.nd.array([0.0, -1.0])
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731
    expected_d = softplus(-np.array([0.0, 2.0])) + softplus(np.array([0.0, -1.0]))
    np.testing.assert_allclose(loss.d_loss(real, fake).asnumpy(), expected_d, rtol=1e-5)
    np.testing.assert_allclose(loss.g_loss(fake).asnumpy(), softplus(-np.array([0.0, -1.0])),
                               rtol=1e-5)


def test_loader_order_is_reproducible_and_resumable():
    data = LFWSample()
    loader = CachedBatchLoader(data, 16, seed=5)
    first = [b[0].asnumpy() for b in loader]
    second = [b[0].asnumpy() for b in loader]  # the next epoch: another order
    assert len(first) == len(data) // 16
    assert not np.array_equal(first[0], second[0])
    again = CachedBatchLoader(data, 16, seed=5)
    again.set_position(0, 3)
    rest = [b[0].asnumpy() for b in again]
    assert len(rest) == len(first) - 3
    for a, b in zip(rest, first[3:]):
        np.testing.assert_array_equal(a, b)
    assert again.epoch == 1
    shards = [CachedBatchLoader(data, 16, seed=5, num_shards=2, shard=s).epoch_indices(0)
              for s in (0, 1)]
    assert not set(shards[0]) & set(shards[1])


def test_flip_mirrors_a_reproducible_half_of_each_epoch():
    """With flip, each image of a batch is the unflipped loader's image or its left-right
    mirror; about half are mirrored, the same ones when the epoch is served again (a resumed
    run), and another half in the next epoch."""
    data = LFWSample()
    plain, flipped = (CachedBatchLoader(data, 50, seed=5, flip=flip) for flip in (False, True))
    epochs = {}
    for epoch in (0, 1):
        mirrored = []
        for index in range(len(plain)):
            a, b = plain.batch(epoch, index)[0].asnumpy(), flipped.batch(epoch, index)[0].asnumpy()
            for x, y in zip(a, b):
                same, mirror = np.array_equal(x, y), np.array_equal(x[:, :, ::-1], y)
                assert same or mirror
                mirrored.append(mirror and not same)
        epochs[epoch] = np.array(mirrored)
        assert 0.35 < epochs[epoch].mean() < 0.65
    assert not np.array_equal(epochs[0], epochs[1])
    again = CachedBatchLoader(data, 50, seed=5, flip=True)
    again.set_position(1, 2)
    np.testing.assert_array_equal(next(iter(again))[0].asnumpy(), flipped.batch(1, 2)[0].asnumpy())


def test_two_devices_train_and_agree():
    est = small_estimator(hybridize=False, ctx=[mx.cpu(0), mx.cpu(1)])
    est.fit(CachedBatchLoader(LFWSample(), 8, seed=0), total_iterations=2)
    for param in est.net.collect_params().values():
        if param.grad_req != 'null':
            copies = param.list_data()
            np.testing.assert_array_equal(copies[0].asnumpy(), copies[1].asnumpy())


def test_short_run_writes_the_documented_run_folder(tmp_path):
    run = tmp_path / 'run'
    train_script.main(SMALL + ['--epochs', '1', '--log-interval', '5', '--sample-interval', '10',
                               '--checkpoint-interval', '10', '--save-dir', str(run)])
    per_epoch = 300 // 8
    log = (run / 'train.log').read_text()
    assert 'Namespace(' in log.splitlines()[0]
    assert 'samples/s' in log and 'discriminator loss' in log and '[Epoch 1] finished' in log
    config = yaml.safe_load((run / 'config.yaml').read_text())
    assert config['batch_size'] == 8 and config['ngf'] == 8
    samples = set(os.listdir(run / 'samples'))
    assert {'real.png', 'epoch-0001.png', 'iter-00000010.png', 'iter-00000030.png',
            'latest.png'} <= samples
    assert (run / 'samples' / 'latest.png').read_bytes() == \
        (run / 'samples' / 'epoch-0001.png').read_bytes()
    assert (run / 'curves.png').stat().st_size > 1000
    history = json.loads((run / 'history.json').read_text())
    assert [row['iteration'] for row in history] == list(range(5, per_epoch + 1, 5))
    iters = [i for i, _ in list_checkpoints(str(run / 'checkpoints'))]
    assert iters == [20, 30, per_epoch]  # every 10 iterations and at the epoch end, last 3 kept
    latest = run / 'checkpoints' / ('iter-%08d' % per_epoch)
    assert sorted(os.listdir(latest)) == ['fixed_noise.npy', 'model.params', 'state.json',
                                          'trainer_d.states', 'trainer_g.states']
    state = json.loads((latest / 'state.json').read_text())
    assert (state['epoch'], state['batch'], state['iteration']) == (1, 0, per_epoch)
    net = get_model('dcgan_lfw', nz=16, ngf=8, ndf=8)
    net.load_parameters(str(run / 'model.params'))
    assert net.generate(2, seed=0).shape == (2, 3, 64, 64)


def test_existing_run_is_not_overwritten(tmp_path):
    run = tmp_path / 'run'
    args = SMALL + ['--iterations', '2', '--checkpoint-interval', '1', '--save-dir', str(run)]
    train_script.main(args)
    with pytest.raises(SystemExit, match='--resume'):
        train_script.main(args)


def _run(args, **kwargs):
    return subprocess.Popen([sys.executable, '-m', 'gluoncv_gan.train'] + args, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def test_sigkill_and_resume_equals_uninterrupted_run(tmp_path):
    common = SMALL + ['--iterations', '24', '--log-interval', '1', '--checkpoint-interval', '4',
                      '--sample-interval', '0']
    whole = _run(common + ['--save-dir', str(tmp_path / 'whole')])
    killed = OutputReader(_run(common + ['--save-dir', str(tmp_path / 'killed')]))
    killed.wait_for(' at iter 14 ', timeout=120)
    killed.proc.send_signal(signal.SIGKILL)
    killed.finish(timeout=30)
    assert killed.proc.returncode == -signal.SIGKILL
    assert not (tmp_path / 'killed' / 'model.params').exists()
    resumed = _run(['--resume', str(tmp_path / 'killed')])
    out, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, out
    assert 'Resumed from' in out and 'iter-000000' in out
    whole_out, _ = whole.communicate(timeout=120)
    assert whole.returncode == 0, whole_out
    assert_same_parameters(tmp_path / 'whole' / 'model.params',
                           tmp_path / 'killed' / 'model.params')
    # the resumed run's history continues without a gap or a repeat
    history = json.loads((tmp_path / 'killed' / 'history.json').read_text())
    assert [row['iteration'] for row in history] == list(range(1, 25))


@pytest.mark.parametrize('config, message', [
    ({'batch_sise': 64}, "unknown config key 'batch_sise' (did you mean 'batch_size'?)"),
    ({'batch_size': 0}, "'batch_size' has the value 0; allowed: a positive integer"),
    ({'batch_size': '64'}, "'batch_size' has the value '64'"),
    ({'lr': -1.0}, "'lr' has the value -1.0"),
    ({'beta1': 1.5}, "'beta1' has the value 1.5; allowed: a number in [0, 1)"),
    ({'dataset': 'imagenet'}, 'allowed: lfw, lfw_sample or folder'),
    ({'loss': 'wasserstein-ish'},
     "'loss' has the value 'wasserstein-ish'; allowed: hinge, lsgan, minimax, vanilla, wgan"),
    ({'n_critic': 0}, "'n_critic' has the value 0"),
    ({'weight_clip': -0.01}, "'weight_clip' has the value -0.01"),
    ({'optimizer': 'sgd'}, 'allowed: adam or rmsprop'),
    ({'lr_d': 0}, "'lr_d' has the value 0.0"),
    ({'image_size': 100}, 'a power of two'),
    ({'hybridize': 'yes'}, "'hybridize' has the value 'yes'; allowed: true or false"),
    ({'dataset': 'folder'}, 'needs data_dir'),
])
def test_bad_config_is_an_error_naming_the_key(tmp_path, config, message):
    path = tmp_path / 'bad.yaml'
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert message in str(err.value)


def test_recipe_reproduces_the_tutorial_hyperparameters():
    config = load_config(os.path.join(REPO, 'configs', 'dcgan_lfw.yaml'))
    assert (config['batch_size'], config['lr'], config['beta1'], config['nz'], config['ngf'],
            config['ndf'], config['image_size'], config['loss']) == \
        (64, 0.0002, 0.5, 100, 64, 64, 64, 'vanilla')


def test_resume_with_another_batch_size_or_worker_count_is_refused(tmp_path):
    run = tmp_path / 'run'
    train_script.main(SMALL + ['--iterations', '2', '--checkpoint-interval', '1',
                               '--save-dir', str(run)])
    with pytest.raises(SystemExit):
        train_script.main(['--resume', str(run), '--iterations', '4', '--batch-size', '4'])
    log = (run / 'train.log').read_text()
    assert ('a job of 1 worker(s) with 8 images per worker and iteration, but this job has 1 '
            'worker(s) with 4 (--batch-size 4 per device x 1 device(s))') in log
    state = json.loads((run / 'checkpoints' / 'iter-00000002' / 'state.json').read_text())
    assert state['handlers']['job'] == {'num_workers': 1, 'devices': 1}
    from gluoncv_gan.distributed import Distribution
    with pytest.raises(ValueError, match=r'resume with the same number of workers \(launch -n 1\)'):
        Distribution(num_workers=2, rank=1).check_resume(state['handlers']['job'], 8, 8)
    Distribution().check_resume(state['handlers']['job'], 8, 8)  # the same shape resumes


def test_bad_config_from_the_command_line_exits_with_the_message(tmp_path, capsys):
    path = tmp_path / 'bad.yaml'
    path.write_text('epochz: 3\n')
    with pytest.raises(SystemExit) as err:
        train_script.main(['--config', str(path), '--save-dir', str(tmp_path / 'run')])
    assert err.value.code == 2
    message = capsys.readouterr().err
    assert message.startswith("error: unknown config key 'epochz' (did you mean 'epochs'?)")
    assert message.count('\n') == 1 and 'Traceback' not in message


def test_missing_dataset_gives_the_prepare_hint(tmp_path):
    with pytest.raises(SystemExit):
        train_script.main(['--dataset', 'lfw', '--data-dir', str(tmp_path / 'nothing'),
                           '--save-dir', str(tmp_path / 'run')])
    log = (tmp_path / 'run' / 'train.log').read_text()
    assert 'python -m gluoncv_gan.data.prepare_lfw' in log


def test_generator_ema_arithmetic_and_resume(tmp_path):
    from gluoncv_gan.estimator import GeneratorEMA
    net = get_model('dcgan_lfw', nz=16, ngf=8, ndf=8)

    def factory():
        return get_model('dcgan_lfw', nz=16, ngf=8, ndf=8).generator
    ema = GeneratorEMA(net.generator, factory, decay=0.9)
    param = net.generator.collect_params()[list(net.generator.collect_params().keys())[0]]
    start = param.data().asnumpy().copy()
    param.set_data(param.data() + 1.0)
    ema.update()
    avg = list(ema.net.collect_params().values())[0].data().asnumpy()
    np.testing.assert_allclose(avg, 0.9 * start + 0.1 * (start + 1.0), rtol=1e-6, atol=1e-7)
    # a run with --ema-decay saves the average in checkpoints and at the end
    run = tmp_path / 'run'
    train_script.main(SMALL + ['--iterations', '3', '--checkpoint-interval', '2',
                               '--ema-decay', '0.99', '--save-dir', str(run)])
    assert (run / 'generator_ema.params').exists()
    assert (run / 'checkpoints' / 'iter-00000002' / 'generator_ema.params').exists()


def test_tensorboard_scalars_when_mxboard_is_installed(tmp_path, monkeypatch):
    import types
    from gluoncv_gan.estimator import TensorBoardHandler
    written = []

    class FakeWriter:
        def __init__(self, logdir):
            self.logdir = logdir

        def add_scalar(self, name, value, global_step):
            written.append(('scalar', name, global_step))

        def add_image(self, name, image, global_step):
            written.append(('image', name, image.shape))

        def close(self):
            written.append(('closed',))
    monkeypatch.setitem(sys.modules, 'mxboard', types.SimpleNamespace(SummaryWriter=FakeWriter))
    run = tmp_path / 'run'
    train_script.main(SMALL + ['--iterations', '4', '--log-interval', '2', '--save-dir', str(run)])
    assert ('scalar', 'd_loss', 2) in written and ('scalar', 'g_loss', 4) in written
    assert written[-1] == ('closed',)
    monkeypatch.setitem(sys.modules, 'mxboard', None)  # not installed: no error, no handler
    assert not TensorBoardHandler(str(tmp_path / 'tb'), 2).available


def test_evaluation_marks_a_best_checkpoint_that_survives_pruning(tmp_path):
    run = tmp_path / 'run'
    args = SMALL + ['--epochs', '3', '--eval-interval', '1', '--eval-samples', '40',
                    '--keep-checkpoints', '1',
                    '--save-dir', str(run)]
    train_script.main(args)
    rows = json.loads((run / 'evaluation.json').read_text())
    assert [r['epoch'] for r in rows] == [1, 2, 3]
    assert all(r['swd'] > 0 and 0 <= r['face_rate'] <= 1 for r in rows)
    best = json.loads((run / 'best.json').read_text())
    assert best['swd'] == min(r['swd'] for r in rows)
    kept = [path for _, path in list_checkpoints(str(run / 'checkpoints'))]
    assert best['checkpoint'] in kept and kept[-1].endswith('iter-%08d' % (3 * (300 // 8)))
    assert len(kept) == (1 if best['epoch'] == 3 else 2)
    log = (run / 'train.log').read_text()
    assert 'evaluation on 40 samples' in log and 'SWD x1e3' in log


def test_batchnorm_recalibration_sets_running_stats_to_the_batch_statistics():
    from gluoncv_gan.estimator.ema import recalibrate_batchnorm
    gen = get_model('dcgan_lfw', nz=16, ngf=8, ndf=8).generator
    recalibrate_batchnorm(gen, 16, batches=1, batch_size=32, seed=4)
    # with one pass the running statistics are exactly that batch's statistics
    z = np.random.RandomState([4, 0xBC]).standard_normal((32, 16, 1, 1)).astype(np.float32)
    first = gen.features[0](mx.nd.array(z)).asnumpy()
    np.testing.assert_allclose(gen.features[1].running_mean.data().asnumpy(),
                               first.mean(axis=(0, 2, 3)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gen.features[1].running_var.data().asnumpy(),
                               first.var(axis=(0, 2, 3)), rtol=1e-3, atol=1e-6)
    assert gen.features[1]._kwargs['momentum'] == 0.9  # restored


def test_generator_step_without_discriminator_weight_gradients_is_the_same_update():
    from gluoncv_gan.estimator.gan_estimator import GANBatchProcessor
    results = []
    init = get_model('dcgan_lfw', nz=16, ngf=8, ndf=8)
    for input_grad_only in (True, False):
        est = small_estimator()
        for dst, src in zip(est.net.collect_params().values(), init.collect_params().values()):
            dst.set_data(src.data())
        est.batch_processor = GANBatchProcessor(input_grad_only=input_grad_only)
        est.fit(CachedBatchLoader(LFWSample(), 8, seed=0), total_iterations=2)
        results.append({k: v.data().asnumpy() for k, v in est.net._collect_params_with_prefix().items()})
    moved = {k: v.data().asnumpy() for k, v in init._collect_params_with_prefix().items()}
    for key in results[0]:
        np.testing.assert_allclose(results[0][key], results[1][key], rtol=1e-5, atol=1e-7,
                                   err_msg=key)
    assert any(not np.allclose(results[0][k], moved[k]) for k in moved)


def test_compare_with_writes_the_run_beside_the_published_model(tmp_path, mxnet_home,
                                                                monkeypatch):
    """--compare-with NAME ends the run with compare.png: the run's fixed-noise samples (left)
    and the published model's (right; its own seed-0 latents, as this run's nz differs)."""
    from gluoncv_gan.pipeline.sampling import generate_images
    from gluoncv_gan.utils.image import make_grid
    run = tmp_path / 'run'
    train_script.main(SMALL + ['--iterations', '2', '--compare-with', 'dcgan_lfw',
                               '--save-dir', str(run)])
    picture = cv2.cvtColor(cv2.imread(str(run / 'compare.png')), cv2.COLOR_BGR2RGB)
    published = make_grid(generate_images(get_model('dcgan_lfw', pretrained=True), 64, seed=0))
    height, width = published.shape[:2]
    assert picture.shape == (28 + height, 2 * width + 12, 3)
    np.testing.assert_array_equal(picture[28:, width + 12:], published)
    assert not np.array_equal(picture[28:, :width], published)  # the left half is the run's
    # a name without published weights: a warning, and the run still ends normally
    from gluoncv_gan.model_zoo import model_store
    monkeypatch.setattr(model_store, '_model_sha1_versions', [
        entry for entry in model_store._model_sha1_versions if entry[1] != 'dcgan_lfw_128'])
    other = tmp_path / 'other'
    train_script.main(SMALL + ['--iterations', '2', '--compare-with', 'dcgan_lfw_128',
                               '--save-dir', str(other)])
    assert (other / 'model.params').exists() and not (other / 'compare.png').exists()
    assert 'the published dcgan_lfw_128 is not available' in (other / 'train.log').read_text()


def test_initial_weights_depend_on_the_seed_only(tmp_path):
    """build_net seeds MXNet's generator: what the process drew before does not change the
    initial weights, and a fresh process's default state is seed 0's (the published runs)."""
    from gluoncv_gan.pipeline.build import build_net

    def initial(seed):
        config = load_config(None, {'seed': seed, 'ngf': 8, 'ndf': 8, 'model': 'sngan_lfw'})
        return [p.data().asnumpy() for p in build_net(config, mx.cpu()).collect_params().values()]

    first = initial(0)
    mx.nd.random.normal(shape=(1000,)).wait_to_read()  # the process draws in between
    assert all(np.array_equal(a, b) for a, b in zip(first, initial(0)))
    assert any(not np.array_equal(a, b) for a, b in zip(first, initial(1)))
    code = ('import sys; import gluoncv_gan; import mxnet as mx; '
            'from gluoncv_gan.pipeline.build import build_net; '
            'from gluoncv_gan.utils.config import load_config; '
            'net = build_net(load_config(None, {"ngf": 8, "ndf": 8, "model": "sngan_lfw"}), mx.cpu()); '
            'mx.nd.save(sys.argv[1], [p.data() for p in net.collect_params().values()])')
    # the same in a fresh process, and in one where build_net's seeding is switched off
    unseeded = code.replace('net = build_net(', 'mx.random.seed = lambda *a, **k: None; net = build_net(')
    for name, source in (('seeded', code), ('unseeded', unseeded)):
        subprocess.run([sys.executable, '-c', source, str(tmp_path / name)], check=True, timeout=120)
    seeded, fresh = mx.nd.load(str(tmp_path / 'seeded')), mx.nd.load(str(tmp_path / 'unseeded'))
    assert all(np.array_equal(a.asnumpy(), b) for a, b in zip(seeded, first))
    assert all(np.array_equal(a.asnumpy(), b.asnumpy()) for a, b in zip(seeded, fresh))
