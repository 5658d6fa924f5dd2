"""The training flags, made from the config schema: one flag per key, same behaviour as YAML."""
import os
import re

import pytest
import yaml

from gluoncv_gan import train as train_script
from gluoncv_gan.utils.config import SCHEMA, flag_of, load_config, overrides_from_args

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the flags of `python -m gluoncv_gan.train` before they were made from the schema: each must stay
FLAGS_KEPT = {
    '--config', '--save-dir', '--resume', '--logging-file', '--model', '--dataset', '--data-dir',
    '--batch-size', '--epochs', '--iterations', '--lr', '--lr-decay-epochs', '--beta1', '--loss',
    '--lr-d', '--beta2', '--optimizer', '--n-critic', '--weight-clip', '--ema-decay', '--nz',
    '--ngf', '--ndf', '--image-size', '--gpus', '--cpus', '--kvstore', '--horovod', '-j',
    '--num-workers', '--log-interval', '--sample-interval', '--checkpoint-interval',
    '--keep-checkpoints', '--eval-interval', '--eval-samples', '--seed', '--no-hybridize', '--amp',
    '--debug'}
OWN_FLAGS = {'-h', '--help', '--config', '--save-dir', '--resume', '--logging-file', '--debug'}
FLAG = re.compile(r'(?<![\w-])(-j|--[a-z][a-z0-9-]*)')


def parser_flags():
    """{option string: destination} of the training command's parser."""
    return {option: action.dest for action in train_script.build_parser()._actions
            for option in action.option_strings}


def test_every_schema_key_has_a_flag_or_is_file_only():
    flags = parser_flags()
    for key, spec in SCHEMA.items():
        if spec.file_only:
            assert flag_of(key) is None
            assert key not in flags.values(), '%s is file-only but has a flag' % key
        else:
            assert flags.get(flag_of(key)) == key, 'config key %s has no flag' % key
    # and every flag that is not the command's own sets a key
    assert {dest for option, dest in flags.items() if option not in OWN_FLAGS} <= set(SCHEMA)


def test_every_flag_of_before_is_kept():
    assert FLAGS_KEPT <= set(parser_flags())
    assert parser_flags()['-j'] == parser_flags()['--num-workers'] == 'num_workers'


def test_flags_left_out_override_nothing(tmp_path):
    path = tmp_path / 'recipe.yaml'
    path.write_text(yaml.safe_dump({'hybridize': False, 'amp': True, 'horovod': True, 'lr': 0.1}))
    args = train_script.parse_args(['--config', str(path)])
    assert set(overrides_from_args(args).values()) == {None}
    config = load_config(str(path), overrides_from_args(args))
    assert (config['hybridize'], config['amp'], config['horovod'], config['lr']) == \
        (False, True, True, 0.1)


def test_bool_flags_switch_the_key_away_from_its_default():
    assert (flag_of('hybridize'), flag_of('amp'), flag_of('horovod')) == \
        ('--no-hybridize', '--amp', '--horovod')
    overrides = overrides_from_args(train_script.parse_args(['--no-hybridize', '--amp',
                                                             '--horovod']))
    assert (overrides['hybridize'], overrides['amp'], overrides['horovod']) == (False, True, True)
    config = load_config(None, overrides)
    assert (config['hybridize'], config['amp'], config['horovod']) == (False, True, True)


def test_flag_values_take_the_key_type():
    args = train_script.parse_args(['--lr', '1', '-j', '3', '--lr-d', '2e-4', '--gpus', '',
                                    '--iterations', '7', '--data-dir', 'faces'])
    overrides = overrides_from_args(args)
    assert overrides['lr'] == 1.0 and isinstance(overrides['lr'], float)
    assert (overrides['num_workers'], overrides['lr_d'], overrides['gpus'],
            overrides['iterations'], overrides['data_dir']) == (3, 2e-4, '', 7, 'faces')


@pytest.mark.parametrize('argv', [['--dataset', 'imagenet'], ['--optimizer', 'sgd'],
                                  ['--kvstore', 'nccl'], ['--epochs', 'ten']])
def test_a_flag_outside_its_choices_or_type_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        train_script.parse_args(argv)
    assert exit_.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_a_registry_name_flag_is_checked_like_the_yaml_key():
    overrides = overrides_from_args(train_script.parse_args(['--loss', 'wasserstein-ish']))
    with pytest.raises(ValueError, match="'loss' has the value 'wasserstein-ish'; allowed: hinge, "
                                         "lsgan, minimax, vanilla, wgan"):
        load_config(None, overrides)


def test_help_shows_each_key_help_and_default(capsys):
    with pytest.raises(SystemExit):
        train_script.parse_args(['--help'])
    out = capsys.readouterr().out
    squeezed = re.sub(r'\s+', '', out)  # argparse wraps lines, also at hyphens
    for key, spec in SCHEMA.items():
        if not spec.file_only:
            assert re.sub(r'\s+', '', spec.help) in squeezed, key
    text = ' '.join(out.split())
    assert 'latent size; default: 100' in text
    assert 'one of: dcgan_lfw, dcgan_lfw_128, lsgan_lfw, resgan_lfw, sngan_lfw, wgan_lfw' in text


def section(path, heading):
    """The text of a markdown section, up to the next heading of the same level."""
    with open(os.path.join(REPO, path)) as f:
        text = f.read()
    start = text.index(heading + '\n')
    end = text.find('\n## ', start + len(heading))
    return text[start:end if end >= 0 else len(text)]


def test_the_docs_flag_list_matches_the_parser():
    text = section(os.path.join('docs', 'training.md'), '## Flags')
    listed = set(FLAG.findall(text.split('A config is checked')[0]))
    assert listed - {'--help'} == set(parser_flags()) - {'-h', '--help'}
    for key, spec in SCHEMA.items():
        if spec.file_only:
            assert '`%s`' % key in text, 'docs/training.md does not name file-only key %s' % key


def test_the_readme_names_only_real_flags():
    text = section('README.md', '## Train')
    assert set(FLAG.findall(text)) - {'--help'} <= set(parser_flags())
