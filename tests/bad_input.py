"""The bad-input table (docs/bad_input.md): one source for the tests and the doc.

Each :class:`Case` feeds one wrong setting or file to the real code path and checks
that the error names the key or file and the value, and that nothing was lost:
parameters, optimizer state and files on disk are as they were. The cases live next to
the code they exercise, in a ``test_<package>_bad_input.py`` of each test package (the
modules in :data:`MODULES`, in the doc's order); this module holds what they share and
prints the table (run as a script, tests/ is its folder, so the modules import). After changing a message, from the repository root::

    python tests/bad_input.py    # writes docs/bad_input.md
"""
import copy
import hashlib
import importlib
import os.path as osp
import pathlib
import re
import tempfile
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple, Type

import pytest
import torch
from mmengine.config import Config

from helpers import DEMO, ROOT
from mmlion.optim import Lion

DOC = osp.join(ROOT, 'docs', 'bad_input.md')
# Where the cases are, in the doc's order.
MODULES = ['test_optim.test_optim_bad_input', 'test_cli.test_cli_bad_input',
           'test_engine.test_engine_bad_input', 'test_utils.test_utils_bad_input']


@dataclass
class Case:
    id: str
    run: Callable  # run(ctx, prepared) must raise
    error: Type[BaseException]
    says: Tuple[str, ...]  # substrings the message must contain (key/file, value)
    input: str  # the bad input, for the doc
    where: str  # where mmlion catches it, for the doc
    setup: Optional[Callable] = None  # setup(ctx) -> prepared: writes the bad files


class Context:
    """A model's parameters with one step of Lion state, and files to watch."""

    def __init__(self, tmp_path):
        torch.manual_seed(0)
        self.tmp = pathlib.Path(tmp_path)
        self.params = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(4))]
        self.optimizer = Lion(self.params, lr=1e-3, weight_decay=0.1)
        self.grad()
        self.optimizer.step()
        self.grad()
        self.watched: List[str] = []

    def grad(self, value=None):
        for p in self.params:
            p.grad = torch.randn_like(p) if value is None else torch.full_like(p, value)

    def snapshot(self):
        files = {}
        for path in self.watched:
            with open(path, 'rb') as f:
                files[path] = hashlib.sha256(f.read()).hexdigest()
        return ([p.detach().clone() for p in self.params],
                copy.deepcopy(self.optimizer.state_dict()), files)

    def watch(self, path):
        self.watched.append(str(path))
        return str(path)

    # -- files ----------------------------------------------------------------------
    def checkpoint(self, optimizer=None, name='epoch_1.pth'):
        optimizer = optimizer or self.optimizer
        path = self.tmp / name
        torch.save(dict(meta=dict(epoch=1, iter=5), state_dict={'w': self.params[0].detach()},
                        optimizer=optimizer.state_dict()), path)
        return self.watch(path)

    def config(self, text=None, **options):
        path = self.tmp / 'config.py'
        path.write_text(text if text is not None else f"_base_ = '{DEMO}'\n")
        self.watch(path)
        cfg = Config.fromfile(str(path))
        cfg.merge_from_dict(options)
        cfg.work_dir = str(self.tmp / 'work_dir')
        return cfg


def adamw_state(ctx):
    """AdamW's state dict for parameters shaped like ctx's."""
    params = [torch.nn.Parameter(p.detach().clone()) for p in ctx.params]
    for p in params:
        p.grad = torch.ones_like(p)
    adamw = torch.optim.AdamW(params)
    adamw.step()
    return adamw


def parametrize(cases: List[Case]):
    """``@parametrize(CASES)`` over ``case``; rows that start a Python process (about
    6 s each) are slow tests, out of the fast subset."""
    return pytest.mark.parametrize('case', [
        pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.id.startswith(
            ('train-tool', 'dist-train')) else []) for c in cases])


def bad_input_test(cases: List[Case], shapes_data: bool = False):
    """The test over ``cases`` for a module to bind as ``test_bad_input``;
    ``shapes_data``: the rows read the demo's Shapes data (the fixture makes it)."""

    @parametrize(cases)
    def test_bad_input(case, tmp_path, request):
        if shapes_data:
            request.getfixturevalue('shapes_data')
        check(case, tmp_path)

    return test_bad_input


def check(case: Case, tmp_path) -> None:
    """Run ``case``: the error it must raise, what its message must say, and nothing
    lost (parameters, optimizer state and the files involved unchanged)."""
    ctx = Context(tmp_path)
    prepared = case.setup(ctx) if case.setup else None
    before = ctx.snapshot()
    with pytest.raises(case.error) as info:
        case.run(ctx, prepared)
    message = str(info.value)
    for part in case.says:
        assert part in message, f'{case.id}: {part!r} not in {message!r}'
    params, state, files = before
    params_after, state_after, files_after = ctx.snapshot()
    for p, q in zip(params, params_after):
        assert torch.equal(p, q), case.id
    assert files == {path: files_after[path] for path in files}, case.id
    assert state['state'].keys() == state_after['state'].keys()
    for index, entry in state['state'].items():
        assert torch.equal(entry['exp_avg'], state_after['state'][index]['exp_avg'])


def all_cases() -> List[Case]:
    return [case for name in MODULES for case in importlib.import_module(name).CASES]


HEAD = '''# Bad input and the errors it gets

Each row is a wrong setting or file, where mmlion catches it, and the message (cut
at 170 characters). Every message names the key or file and the value. In every row
the parameters, the optimizer state and the files on disk are left as they were: the
`test_*_bad_input.py` of each test package walks its rows, checks each message and
compares parameters, `exp_avg` and file hashes before and after. Regenerate the table
with `python tests/bad_input.py` after changing a message.

`check_config` runs in `tools/train.py` before the Runner is built, so config errors
come in about a second, before data loading or a training step. Call it yourself
(`from mmlion.cli import check_config`) when you build a Runner in Python. What it
reads the known keys from, and what `ConfigCheckHook` checks once the model, a loaded
checkpoint and the metrics are there: [config_checks.md](config_checks.md).

| id | bad input | caught by | error |
| --- | --- | --- | --- |
'''


def render_table(cases: List[Case]) -> str:
    rows = []
    for case in cases:
        folder = pathlib.Path(tempfile.mkdtemp())
        ctx = Context(folder)
        prepared = case.setup(ctx) if case.setup else None
        try:
            case.run(ctx, prepared)
        except BaseException as e:  # each case raises; the row shows what
            message = str(e).replace(str(folder) + '/', '').replace(
                'mmlion.utils.config_error.ConfigError: ', '')
            # what changes from run to run, so the page changes only with a message
            message = re.sub(r'pid \d+ on \S+, started \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d',
                             'pid PID on HOST, started TIME', message)
            if len(message) > 170:
                message = message[:167].rstrip() + '...'
            message = message.replace('|', '\\|')
            rows.append(f'| `{case.id}` | {case.input} | {case.where} | '
                        f'`{type(e).__name__}`: {message} |')
        else:
            raise AssertionError(f'{case.id} raised nothing')
    return HEAD + '\n'.join(rows) + '\n'


if __name__ == '__main__':
    from helpers import generate_shapes
    generate_shapes()  # the config rows read the demo's data
    cases = all_cases()
    with open(DOC, 'w') as f:
        f.write(render_table(cases))
    print(f'wrote {osp.relpath(DOC)}: {len(cases)} rows')
