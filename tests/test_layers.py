"""mmlion's layers point one way: each package imports only from the layers below it
(function-level imports counted), and no module imports itself back through others.

    utils  <  ops, registry  <  optim  <  engine  <  cli  <  mmlion/__init__.py
"""
import ast
import os
import os.path as osp

from helpers import ROOT

PACKAGE = osp.join(ROOT, 'mmlion')
LAYERS = {'utils': 0, 'version': 0, 'ops': 1, 'registry': 1, 'optim': 2, 'engine': 3,
          'cli': 4, '__init__': 5}


def module_name(path: str) -> str:
    relative = osp.relpath(path, ROOT)[:-len('.py')].replace(os.sep, '.')
    return relative[:-len('.__init__')] if relative.endswith('.__init__') else relative


def imported_modules(path: str):
    """Every mmlion module ``path`` imports, anywhere in it."""
    name = module_name(path)
    package = name if path.endswith('__init__.py') else name.rpartition('.')[0]
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith('mmlion'))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ''
            if target.startswith('mmlion'):
                yield target
                for alias in node.names:  # `from mmlion.ops import lion_cpu` is a module too
                    yield f'{target}.{alias.name}'


def modules():
    found = {}
    for top, _, files in os.walk(PACKAGE):
        for file in files:
            if file.endswith('.py'):
                path = osp.join(top, file)
                found[module_name(path)] = path
    return found


def layer(module: str) -> int:
    parts = module.split('.')
    return LAYERS['__init__'] if len(parts) == 1 else LAYERS[parts[1]]


def graph():
    known = modules()
    return {name: sorted({m for m in imported_modules(path) if m in known and m != name})
            for name, path in known.items()}


def test_every_import_points_down_or_stays_in_its_package():
    wrong = []
    for name, targets in graph().items():
        for target in targets:
            same_package = target.split('.')[:2] == name.split('.')[:2]
            if not same_package and layer(target) >= layer(name):
                wrong.append(f'{name} imports {target}')
    assert not wrong, '\n'.join(wrong)


def test_no_import_cycles():
    edges = graph()
    # A package's __init__ importing its own modules is how packages are made; a
    # module importing its package back is the cycle that matters.
    edges = {n: [t for t in ts if not n.startswith(t + '.')] for n, ts in edges.items()}
    state, cycles = {}, []

    def visit(node, path):
        state[node] = 'open'
        for target in edges.get(node, []):
            if state.get(target) == 'open':
                cycles.append(' -> '.join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[node] = 'done'

    for node in edges:
        if node not in state:
            visit(node, [node])
    assert not cycles, '\n'.join(cycles)


def test_atomic_files_and_ownership_need_neither_torch_nor_mmengine():
    for name in ('atomic', 'ownership'):
        tree = ast.parse(open(osp.join(PACKAGE, 'utils', f'{name}.py')).read())
        imported = {a.name.split('.')[0] for node in ast.walk(tree)
                    if isinstance(node, ast.Import) for a in node.names}
        imported |= {(node.module or '').split('.')[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and not node.level}
        assert not imported & {'torch', 'mmengine', 'mmlion'}, (name, imported)
