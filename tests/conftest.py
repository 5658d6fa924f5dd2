"""Shared fixtures: an isolated MXNET_HOME, and the full LFW mirror when it is present."""
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_ARCHIVE = os.path.join(REPO, '..', 'shared', 'data', 'lfw-deepfunneled.tgz')
SHARED_SHA1 = 'f7dc3f1d2f8529114edf72d041bfdd82596c6761'


# A run shows the project's own warnings (and pytest's), not the third-party deprecations that
# MXNet, GluonCV and their dependencies raise by the hundred: later filters take precedence.
# Here rather than in an ini file, so that plain `pytest` from the repository root uses them.
WARNING_FILTERS = [
    'ignore',
    'default::Warning:gluoncv_gan',
    'default::Warning:test_',
    'default::Warning:conftest',
    'default::pytest.PytestWarning',
]


# Seconds a test may run before pytest-timeout stops it with a stack dump, so that a hung
# subprocess or lock fails one test instead of blocking the run; longer tests carry
# @pytest.mark.timeout(N). --timeout, $PYTEST_TIMEOUT or an ini ``timeout`` replace it.
DEFAULT_TIMEOUT = 300


def _hypothesis_profile():
    """Property-based tests draw the same examples on every run (a failure repeats) and keep no
    example database in the clone."""
    try:
        from hypothesis import settings
    except ImportError:  # the tests that use it import it themselves and say so
        return
    settings.register_profile('gluoncv_gan', database=None, derandomize=True)
    settings.load_profile('gluoncv_gan')


@pytest.hookimpl(tryfirst=True)  # before pytest-timeout reads its settings
def pytest_configure(config):
    _hypothesis_profile()
    for line in WARNING_FILTERS:
        config.addinivalue_line('filterwarnings', line)
    if (config.pluginmanager.hasplugin('timeout') and config.getoption('timeout') is None
            and not os.environ.get('PYTEST_TIMEOUT') and not config.getini('timeout')):
        config.option.timeout = DEFAULT_TIMEOUT


def lfw_archive():
    """The full LFW archive: $GLUONCV_GAN_LFW_ARCHIVE, else ../shared/data beside the repo."""
    path = os.environ.get('GLUONCV_GAN_LFW_ARCHIVE') or SHARED_ARCHIVE
    return os.path.abspath(path) if os.path.isfile(path) else None


@pytest.fixture(autouse=True)
def mxnet_home(tmp_path_factory, monkeypatch):
    """Every test gets its own MXNET_HOME so nothing touches the user's ~/.mxnet."""
    home = tmp_path_factory.mktemp('mxnet_home')
    monkeypatch.setenv('MXNET_HOME', str(home))
    return home


@pytest.fixture(autouse=True)
def quick_download_retries(monkeypatch):
    """Download retries wait a millisecond, not seconds; tests of the backoff pass their own."""
    from gluoncv_gan.utils import download
    monkeypatch.setattr(download, 'BACKOFF', 0.001)


@pytest.fixture(scope='session')
def full_lfw_root(tmp_path_factory):
    """A prepared full LFW root: $GLUONCV_GAN_LFW_ROOT, or the mirror archive extracted once.

    Skips when neither is available (a fresh clone has no ../shared/data).
    """
    root = os.environ.get('GLUONCV_GAN_LFW_ROOT')
    if root:
        if not os.path.isdir(root):
            pytest.fail('GLUONCV_GAN_LFW_ROOT=%s is not a folder' % root)
        return root
    archive = lfw_archive()
    if archive is None:
        pytest.skip('full LFW not available: set GLUONCV_GAN_LFW_ROOT to a prepared root or '
                    'GLUONCV_GAN_LFW_ARCHIVE to lfw-deepfunneled.tgz (CI uses ../shared/data)')
    from gluoncv_gan.data.prepare_lfw import prepare_lfw
    root = str(tmp_path_factory.mktemp('lfw_full'))
    prepare_lfw(download_dir=root, archive=archive, sha1=SHARED_SHA1, progress=False)
    return root
