"""The README's and docs' commands run as written, and their relative links point to files.

Every fenced ``bash`` or ``python`` block either runs here or is preceded by a marker line
``<!-- docs-test: skip (reason) -->``. The blocks of one document run in order in one copy of the
repository (a later block may use what an earlier one wrote, as a reader following the page
would), with ``MXNET_HOME`` in a temporary folder and a timeout on every process.
"""
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ['README.md'] + sorted(
    os.path.relpath(os.path.join(folder, name), REPO)
    for folder, _, names in os.walk(os.path.join(REPO, 'docs')) for name in names
    if name.endswith('.md'))
LANGUAGES = ('bash', 'python')
SKIP = re.compile(r'^<!-- docs-test: skip \((?P<reason>[^)]+)\) -->$')
FENCE = re.compile(r'^```(?P<lang>\S*)\s*$')
LINK = re.compile(r'\]\((?P<target>[^)\s]+)\)')
BLOCK_TIMEOUT = 120  # seconds for one block; the whole file stays near two minutes


def read_text(path):
    with open(os.path.join(REPO, path), encoding='utf-8') as f:
        return f.read()


def read_blocks(path):
    """(language, first line number, code, skip reason or None) of each fenced block."""
    lines = read_text(path).splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        marker = SKIP.match(lines[i - 1].strip()) if i > 0 else None
        end = i + 1
        while end < len(lines) and lines[end].strip() != '```':
            end += 1
        blocks.append((fence.group('lang'), i + 1, '\n'.join(lines[i + 1:end]),
                       marker.group('reason') if marker else None))
        i = end + 1
    return blocks


def markers_without_block(path):
    """Line numbers of skip markers that are not directly followed by a fenced block."""
    lines = read_text(path).splitlines()
    return [n + 1 for n, line in enumerate(lines) if SKIP.match(line.strip())
            and not (n + 1 < len(lines) and FENCE.match(lines[n + 1]))]


def copy_repo(dest):
    """The repository's files without version control, caches and earlier runs."""
    shutil.copytree(REPO, dest, symlinks=True, ignore=shutil.ignore_patterns(
        '.git', 'runs', '__pycache__', '*.egg-info', '.pytest_cache', '.venv', 'build', 'dist'))
    return dest


def run_block(lang, code, cwd, env):
    if lang == 'bash':
        cmd = ['bash', '-e', '-o', 'pipefail', '-c', code]
    else:
        cmd = [sys.executable, '-c', code]
    try:
        return subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True,
                              timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired as err:
        pytest.fail('block timed out after %d s:\n%s\n%s' % (BLOCK_TIMEOUT, code, err.output))


def test_docs_are_found():
    assert 'README.md' in DOCS and 'docs/model_cards/dcgan_lfw.md' in DOCS
    assert all(os.path.isfile(os.path.join(REPO, doc)) for doc in DOCS)


@pytest.mark.parametrize('doc', DOCS)
def test_every_skip_marker_has_a_reason_and_a_block(doc):
    assert markers_without_block(doc) == []
    for lang, line, _, reason in read_blocks(doc):
        if reason is not None:
            assert lang in LANGUAGES, '%s:%d: skip marker on a %r block' % (doc, line, lang)
            assert len(reason.strip()) >= 10, '%s:%d: say why the block is skipped' % (doc, line)


def test_skipped_blocks_are_listed(capsys):
    skipped = [(doc, line, reason) for doc in DOCS for lang, line, _, reason in read_blocks(doc)
               if lang in LANGUAGES and reason is not None]
    with capsys.disabled():
        print('\ncommand blocks not run by tests/test_docs.py:')
        for doc, line, reason in skipped:
            print('  %s:%d  %s' % (doc, line, reason))
    # the set-up commands of the README are long and must stay marked
    readme = [block for block in read_blocks('README.md') if block[0] == 'bash']
    assert 'pip install -e' in readme[0][2] and readme[0][3] is not None
    assert all(reason for _, _, reason in skipped)


@pytest.mark.parametrize('doc', DOCS)
def test_relative_links_point_to_files(doc):
    text = read_text(doc)
    folder = os.path.dirname(os.path.join(REPO, doc))
    broken = []
    for match in LINK.finditer(text):
        target = match.group('target').split('#')[0]
        if not target or re.match(r'^[a-z]+:', target):  # an anchor, or http:, https:, mailto:
            continue
        if not os.path.exists(os.path.normpath(os.path.join(folder, target))):
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize('doc', [doc for doc in DOCS if any(
    lang in LANGUAGES and reason is None for lang, _, _, reason in read_blocks(doc))])
def test_commands_run_as_written(doc, tmp_path):
    runnable = [code for lang, _, code, reason in read_blocks(doc)
                if lang in LANGUAGES and reason is None]
    if any('onnx' in code for code in runnable) and not all(
            importlib.util.find_spec(name) for name in ('onnx', 'onnxruntime')):
        pytest.skip("%s exports or runs ONNX: install the [onnx] extra (pip install -e '.[onnx]')"
                    % doc)
    repo = copy_repo(str(tmp_path / 'gluoncv-gan'))
    env = dict(os.environ)
    env['MXNET_HOME'] = str(tmp_path / 'mxnet_home')
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
    env.pop('GLUONCV_GAN_DEBUG', None)
    ran = 0
    for lang, line, code, reason in read_blocks(doc):
        if lang not in LANGUAGES or reason is not None:
            continue
        result = run_block(lang, code, repo, env)
        assert result.returncode == 0, '%s:%d exited %d:\n%s\n--- output ---\n%s' % (
            doc, line, result.returncode, code, result.stdout[-3000:])
        ran += 1
    assert ran >= 1 and ran == len(runnable), 'ran %d of the %d runnable blocks of %s' % (
        ran, len(runnable), doc)


def test_readme_zoo_table_has_a_row_per_name_with_its_published_sha1():
    from gluoncv_gan.model_zoo import get_model_list, pretrained_model_list
    from gluoncv_gan.model_zoo.model_store import short_hash
    section = read_text('README.md').split('## Model zoo', 1)[1].split('\n## ', 1)[0]
    rows = {}
    for line in section.splitlines():
        name = re.match(r'^\| `(\w+)`', line)
        if name:
            rows[name.group(1)] = line
    assert sorted(rows) == sorted(get_model_list())
    for name, row in rows.items():
        if name in pretrained_model_list():
            assert '`%s`' % short_hash(name) in row and 'passed' in row, row
            assert ('model_cards/%s.md' % name) in row
            assert os.path.exists(os.path.join(REPO, 'docs', 'model_cards', name + '.md'))
        else:
            assert 'no weights published' in row, row
