"""The package's layering, read from its imports with ``ast``: commands -> pipeline ->
{estimator, model_zoo, metrics, data, distributed, nn, loss} -> utils, one way. Commands use the
library layers, never each other; no lower layer imports a higher one (the estimator never
imports the pipeline); no library module imports a command; neither modules nor folders import
each other in a cycle; ``utils`` sits at the bottom, importing nothing from the rest of the
package; and one place builds the estimator.

A command is a module that runs as a program: it has an ``if __name__ == '__main__':`` block,
or it is a package's ``__main__.py``; a package with a ``__main__.py`` (``benchmark``) is one
command, whose modules may import each other.
"""
import ast
import pathlib

import pytest

import gluoncv_gan
from gluoncv_gan.cli import COMMANDS

PACKAGE_DIR = pathlib.Path(gluoncv_gan.__file__).parent

# (importer, imported command) pairs that are allowed, each with its reason
ALLOWED = {
    # the dispatcher of ``gluoncv-gan <command>``: mapping names to commands is its one job
    ('gluoncv_gan.cli', '*'): 'cli dispatches to the commands',
    ('gluoncv_gan.__main__', 'gluoncv_gan.cli'): 'python -m gluoncv_gan runs the dispatcher',
}

# the layer of each folder (a subpackage, or a module at the top): a module imports its own
# layer and the ones below, never one above
LAYERS = {'utils': 0, 'estimator': 1, 'model_zoo': 1, 'metrics': 1, 'data': 1, 'distributed': 1,
          'nn': 1, 'loss': 1, 'pipeline': 2}
COMMAND_LAYER = 3


def module_name(path):
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def package_sources():
    """{module name: (source, is a package __init__)} of every module of gluoncv_gan."""
    return {module_name(path): (path.read_text(encoding='utf-8'), path.name == '__init__.py')
            for path in sorted(PACKAGE_DIR.rglob('*.py'))}


def is_command(tree):
    """Whether a module runs as a program: a top-level ``if __name__ == '__main__':``."""
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            sides = [node.test.left] + node.test.comparators
            names = {getattr(side, 'id', None) for side in sides}
            values = {getattr(side, 'value', None) for side in sides}
            if '__name__' in names and '__main__' in values:
                return True
    return False


def imported_modules(name, is_package, tree, known):
    """Modules of the package that ``tree`` imports anywhere (functions included).

    ``from .x import y`` counts as importing ``x.y`` when that is a module, else ``x``.
    """
    package = name if is_package else name.rpartition('.')[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split('.')
                base = parts[:len(parts) - node.level + 1] + ([node.module] if node.module else [])
                base = '.'.join(base)
            else:
                base = node.module or ''
            for alias in node.names:
                candidate = base + '.' + alias.name
                found.add(candidate if candidate in known else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {module for module in found if module in known and module != name}


def command_packages(sources):
    """Packages below the root that run as a command (they have a ``__main__``)."""
    return {name.rpartition('.')[0] for name in sources
            if name.endswith('.__main__') and name != 'gluoncv_gan.__main__'}


def import_graph(sources):
    """({module: modules it imports}, set of commands) of ``sources`` (see package_sources).

    Every module of a command package counts as a command."""
    trees = {name: ast.parse(source, filename=name) for name, (source, _) in sources.items()}
    graph = {name: imported_modules(name, sources[name][1], tree, set(sources))
             for name, tree in trees.items()}
    packages = command_packages(sources)
    return graph, {name for name, tree in trees.items()
                   if is_command(tree) or name.rpartition('.')[2] == '__main__'
                   or any(name == p or name.startswith(p + '.') for p in packages)}


def folder(module):
    """The folder of a module: its subpackage, or the module itself at the top of the package."""
    return module.split('.')[1] if '.' in module else module


def violations(sources):
    """Sorted ``(importer, command)`` pairs that break the layering, minus :data:`ALLOWED`;
    the modules of one command package import each other freely."""
    graph, commands = import_graph(sources)
    found = []
    for importer, imported in graph.items():
        for target in sorted(imported & commands):
            if folder(importer) == folder(target) and folder(target) in {
                    folder(p) for p in command_packages(sources)}:
                continue
            if (importer, '*') not in ALLOWED and (importer, target) not in ALLOWED:
                found.append((importer, target))
    return sorted(found)


def layer(module, commands):
    """The layer of a module (:data:`LAYERS`; a command, or a module at the top of the package
    that is not in the table, is a command's); None for the root package."""
    if module == 'gluoncv_gan':
        return None
    name = folder(module)
    if module in commands and '.' not in module[len('gluoncv_gan.'):]:
        return COMMAND_LAYER
    return LAYERS.get(name, COMMAND_LAYER)


def upward_imports(sources):
    """Sorted ``(importer, imported)`` pairs where a lower layer imports a higher one, and the
    number of edges checked."""
    graph, commands = import_graph(sources)
    found, checked = [], 0
    for importer, imported in graph.items():
        for target in imported:
            low, high = layer(importer, commands), layer(target, commands)
            if low is None or high is None:
                continue
            checked += 1
            if high > low:
                found.append((importer, target))
    return sorted(found), checked


def folder_graph(graph):
    """{folder: folders it imports} of a module graph, the root package left out."""
    folders = {}
    for importer, imported in graph.items():
        if importer == 'gluoncv_gan':
            continue
        targets = {folder(t) for t in imported if t != 'gluoncv_gan'} - {folder(importer)}
        folders.setdefault(folder(importer), set()).update(targets)
    for targets in list(folders.values()):
        for target in targets:
            folders.setdefault(target, set())
    return folders


def test_no_module_imports_a_command():
    assert violations(package_sources()) == []


def test_every_dispatched_command_is_a_command_module():
    _, commands = import_graph(package_sources())
    assert {module for module, _ in COMMANDS.values()} <= commands
    assert 'gluoncv_gan.cli' in commands and 'gluoncv_gan.train' in commands


def test_allowed_exceptions_are_still_needed():
    graph, commands = import_graph(package_sources())
    for importer, target in ALLOWED:
        assert importer in commands
        if target != '*':
            assert target in graph[importer], '%s no longer imports %s: drop the exception' % (
                importer, target)


def test_library_layer_exists_and_commands_use_it():
    graph, _ = import_graph(package_sources())
    for command in ('gluoncv_gan.train', 'gluoncv_gan.evaluate', 'gluoncv_gan.sample',
                    'gluoncv_gan.compare'):
        assert any(m.startswith('gluoncv_gan.pipeline.') for m in graph[command]), command


def test_the_estimator_never_imports_the_pipeline():
    # what the estimator's handlers measure or write is passed in (as MXNet's ValidationHandler
    # takes its eval_fn), so the estimator does not reach up into the pipeline
    graph, _ = import_graph(package_sources())
    estimator = [m for m in graph if folder(m) == 'estimator']
    assert len(estimator) >= 5  # the check sees the estimator's modules
    for module in estimator:
        assert not [t for t in graph[module] if folder(t) == 'pipeline'], module


def test_no_lower_layer_imports_a_higher_one():
    found, checked = upward_imports(package_sources())
    assert checked > 100  # the edges of the whole package were read
    assert found == []


@pytest.mark.parametrize('module, planted, expected', [
    ('gluoncv_gan.estimator.event_handler', 'from ..pipeline import evaluation',
     'gluoncv_gan.pipeline.evaluation'),
    ('gluoncv_gan.metrics.swd', 'def f():\n    from ..pipeline.sampling import sample_images',
     'gluoncv_gan.pipeline.sampling'),
    ('gluoncv_gan.pipeline.build', 'from .. import train', 'gluoncv_gan.train'),
])
def test_the_layer_check_catches_an_upward_import(module, planted, expected):
    sources = package_sources()
    source, is_package = sources[module]
    sources[module] = (source + '\n\n' + planted + '\n', is_package)
    assert (module, expected) in upward_imports(sources)[0]


def test_one_place_builds_the_estimator():
    places = []
    for name, (source, _) in package_sources().items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and 'GANEstimator' in (
                    getattr(node.func, 'id', None), getattr(node.func, 'attr', None)):
                places.append(name)
    assert places == ['gluoncv_gan.pipeline.assembly']


def test_the_benchmark_package_is_one_command():
    sources = package_sources()
    _, commands = import_graph(sources)
    assert 'gluoncv_gan.benchmark' in command_packages(sources)
    assert {'gluoncv_gan.benchmark', 'gluoncv_gan.benchmark.run'} <= commands
    # its modules import each other; another command importing one of them is caught
    sources['gluoncv_gan.sample'] = ('from .benchmark import run\n' + sources[
        'gluoncv_gan.sample'][0], False)
    assert violations(sources) == [('gluoncv_gan.sample', 'gluoncv_gan.benchmark.run')]


def test_a_planted_command_import_is_caught():
    sources = package_sources()
    library_source, is_package = sources['gluoncv_gan.metrics.swd']
    sources['gluoncv_gan.metrics.swd'] = (library_source + '\n\ndef _planted():\n'
                                          '    from ..evaluate import print_table\n', is_package)
    command_source, is_package = sources['gluoncv_gan.sample']
    sources['gluoncv_gan.sample'] = ('from . import train\n' + command_source, is_package)
    assert violations(sources) == [('gluoncv_gan.metrics.swd', 'gluoncv_gan.evaluate'),
                                   ('gluoncv_gan.sample', 'gluoncv_gan.train')]


def test_imports_resolve_relative_and_absolute_forms():
    known = {'gluoncv_gan', 'gluoncv_gan.estimator', 'gluoncv_gan.estimator.checkpoint',
             'gluoncv_gan.train', 'gluoncv_gan.pipeline', 'gluoncv_gan.pipeline.build'}
    tree = ast.parse('import gluoncv_gan.train\n'
                     'from .. import pipeline\n'
                     'from ..estimator import checkpoint as ckpt\n'
                     'from .build import contexts\n')
    assert imported_modules('gluoncv_gan.pipeline.training', False, tree, known) == {
        'gluoncv_gan.train', 'gluoncv_gan.pipeline', 'gluoncv_gan.estimator.checkpoint',
        'gluoncv_gan.pipeline.build'}


def find_cycle(graph, skip=()):
    """One import cycle as a list of modules, or None; edges into ``skip`` are ignored."""
    state, stack = {}, []

    def visit(module):
        state[module] = 'open'
        stack.append(module)
        for target in sorted(graph[module]):
            if target in skip:
                continue
            if state.get(target) == 'open':
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        state[module] = 'done'
        stack.pop()
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    graph = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}
    assert find_cycle(graph) == ['a', 'b', 'c', 'a']
    assert find_cycle(graph, skip={'a'}) is None


def test_no_import_cycle_between_folders():
    graph, _ = import_graph(package_sources())
    folders = folder_graph(graph)
    assert {'estimator', 'pipeline', 'utils', 'benchmark'} <= set(folders)
    cycle = find_cycle(folders)
    assert cycle is None, 'folder cycle: %s' % ' -> '.join(cycle)


def test_the_folder_cycle_check_sees_a_planted_cycle():
    sources = package_sources()
    source, is_package = sources['gluoncv_gan.utils.fileio']
    sources['gluoncv_gan.utils.fileio'] = (source + '\nfrom ..data import lfw\n', is_package)
    graph, _ = import_graph(sources)
    assert find_cycle(folder_graph(graph)) is not None


def test_no_import_cycle_in_the_package():
    # the root package imports its subpackages for the user; a module importing `gluoncv_gan`
    # itself would close a cycle through it, and is counted as any other edge but that one
    graph, _ = import_graph(package_sources())
    cycle = find_cycle(graph, skip={'gluoncv_gan'})
    assert cycle is None, 'import cycle: %s' % ' -> '.join(cycle)


def utils_imports_from_above(sources):
    """{utils module: modules outside utils it imports} of ``sources``, empty ones left out."""
    graph, _ = import_graph(sources)
    outside = {module: sorted(target for target in targets
                              if not target.startswith('gluoncv_gan.utils'))
               for module, targets in graph.items() if module.startswith('gluoncv_gan.utils')}
    return {module: targets for module, targets in outside.items() if targets}


def test_utils_imports_nothing_from_the_rest_of_the_package():
    sources = package_sources()
    assert 'gluoncv_gan.utils.config' in sources  # the check sees utils' modules
    assert utils_imports_from_above(sources) == {}


@pytest.mark.parametrize('planted, expected', [
    ('from ..loss import objective_names', 'gluoncv_gan.loss'),
    ('from .. import model_zoo', 'gluoncv_gan.model_zoo'),
    ('import gluoncv_gan.model_zoo.dcgan', 'gluoncv_gan.model_zoo.dcgan'),
    ('def f():\n    from ..model_zoo import get_model_list', 'gluoncv_gan.model_zoo'),
])
def test_the_utils_check_catches_an_upward_import(planted, expected):
    sources = package_sources()
    source, is_package = sources['gluoncv_gan.utils.config']
    sources['gluoncv_gan.utils.config'] = (source + '\n\n' + planted + '\n', is_package)
    assert expected in utils_imports_from_above(sources)['gluoncv_gan.utils.config']
