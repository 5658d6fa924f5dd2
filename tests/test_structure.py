"""The package's import structure, read from the source (ast): no cycles, utils at the bottom."""
import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = 'gluoncv_gan'


def package_modules():
    """{dotted module name: source path} of every module of the package."""
    modules = {}
    for folder, _, files in os.walk(os.path.join(REPO, PACKAGE)):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path, REPO)[:-3].replace(os.sep, '.')
                if dotted.endswith('.__init__'):
                    dotted = dotted[:-len('.__init__')]
                modules[dotted] = path
    return modules


def imported_modules(module, path, modules):
    """Modules of the package that ``module`` imports anywhere in its source (functions too)."""
    is_package = path.endswith('__init__.py')
    here = module.split('.') if is_package else module.split('.')[:-1]
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = '.'.join(here[:len(here) - node.level + 1]) if node.level else ''
            parent = '.'.join(part for part in (base, node.module or '') if part)
            # `from x import y` imports the submodule x.y when there is one, else x
            targets = [parent + '.' + alias.name if parent + '.' + alias.name in modules
                       else parent for alias in node.names]
        else:
            continue
        for target in targets:
            while target not in modules and '.' in target:
                target = target.rsplit('.', 1)[0]
            if target in modules and target != module:
                found.add(target)
    return found


def import_graph():
    modules = package_modules()
    return {module: imported_modules(module, path, modules) for module, path in modules.items()}


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


def test_the_import_reader_sees_relative_and_function_level_imports():
    graph = import_graph()
    assert 'gluoncv_gan.utils.registry' in graph['gluoncv_gan.loss']
    # dcgan's model store import, and the config's registry import
    assert 'gluoncv_gan.model_zoo.model_store' in graph['gluoncv_gan.model_zoo.dcgan']
    assert 'gluoncv_gan.utils.registry' in graph['gluoncv_gan.utils.config']


def test_the_cycle_finder_finds_a_cycle():
    graph = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}
    assert find_cycle(graph) == ['a', 'b', 'c', 'a']
    assert find_cycle(graph, skip={'a'}) is None


def test_no_import_cycle_in_the_package():
    # the root package imports its subpackages for the user; a module importing `gluoncv_gan`
    # itself would close a cycle through it, and is counted as any other edge but that one
    graph = import_graph()
    assert find_cycle(graph, skip={PACKAGE}) is None, \
        'import cycle: %s' % ' -> '.join(find_cycle(graph, skip={PACKAGE}))


def test_utils_imports_nothing_from_the_rest_of_the_package():
    graph = import_graph()
    outside = {module: sorted(target for target in targets
                              if not target.startswith(PACKAGE + '.utils'))
               for module, targets in graph.items() if module.startswith(PACKAGE + '.utils')}
    assert outside.get(PACKAGE + '.utils.config') is not None  # the check sees utils' modules
    assert {module: targets for module, targets in outside.items() if targets} == {}


@pytest.mark.parametrize('source, expected', [
    ('from ..loss import objective_names', 'gluoncv_gan.loss'),
    ('from .. import model_zoo', 'gluoncv_gan.model_zoo'),
    ('import gluoncv_gan.model_zoo.dcgan', 'gluoncv_gan.model_zoo.dcgan'),
    ('def f():\n    from ..model_zoo import get_model_list', 'gluoncv_gan.model_zoo'),
])
def test_the_utils_check_would_catch_an_upward_import(tmp_path, source, expected):
    path = tmp_path / 'config.py'
    path.write_text(source + '\n')
    modules = package_modules()
    assert expected in imported_modules('gluoncv_gan.utils.config', str(path), modules)
