"""``type='Lion'`` builds mmlion's Lion in every import order, under every scope.

Each case runs in a fresh interpreter, because registration happens once, at import.
"""
import importlib.util
import sys
import textwrap

import pytest

from helpers import run_tool

BUILD = textwrap.dedent('''
    import torch
    from mmengine.optim import build_optim_wrapper
    def build(type_name='Lion'):
        model = torch.nn.Linear(2, 2)
        wrapper = build_optim_wrapper(
            model, dict(optimizer=dict(type=type_name, lr=1e-4, weight_decay=0.1)))
        return type(wrapper.optimizer)
''')
DISPLACED = "it now builds mmlion.optim.Lion"
pytestmark = pytest.mark.slow  # each case starts a fresh interpreter


def run_python(code: str, before: str = '') -> str:
    """``code`` in a fresh interpreter, after ``before`` and then BUILD (which imports
    MMEngine's optimizers)."""
    return run_tool([sys.executable, '-c', textwrap.dedent(before) + BUILD +
                     textwrap.dedent(code)], timeout=300)


def test_import_mmlion_first_then_mmengine():
    run_python('''
        import mmlion
        import mmengine.optim
        from mmengine.registry import OPTIMIZERS
        assert OPTIMIZERS.get('Lion') is mmlion.Lion
        assert build() is mmlion.Lion
    ''')


def test_stand_in_lion_registered_first_is_displaced_with_one_message():
    out = run_python('''
        import torch
        import mmengine.optim
        from mmengine.registry import OPTIMIZERS
        class StandInLion(torch.optim.SGD):
            pass
        OPTIMIZERS.register_module(name='Lion', module=StandInLion, force=True)
        assert build() is StandInLion
        import mmlion
        import mmlion.optim
        assert build() is mmlion.Lion
    ''')
    assert out.count(DISPLACED) == 1, out
    assert 'StandInLion' in out


@pytest.mark.skipif(importlib.util.find_spec('lion_pytorch') is None,
                    reason='lion-pytorch is not installed')
@pytest.mark.parametrize('first', ['lion_pytorch', 'mmengine.optim'])
def test_lion_pytorch_installed(first):
    out = run_python(f'''
        import {first}
        import mmlion
        import lion_pytorch
        assert build() is mmlion.Lion
        assert build() is not lion_pytorch.Lion
    ''')
    assert out.count(DISPLACED) == 1 and 'lion_pytorch' in out, out


def test_no_message_when_nothing_is_displaced():
    """With no other Lion to displace (lion-pytorch and bitsandbytes made unimportable
    in this interpreter, whether or not they are installed), mmlion says nothing."""
    out = run_python('''
        import mmengine.optim.optimizer.builder as builder
        assert builder.LION_OPTIMIZERS == [] and builder.BITSANDBYTES_OPTIMIZERS == []
        import mmlion
        assert build() is mmlion.Lion
    ''', before='''
        import sys
        sys.modules['lion_pytorch'] = None  # an import of it raises ImportError
        sys.modules['bitsandbytes'] = None
    ''')
    assert DISPLACED not in out, out


def test_scoped_type_and_mmdet_default_scope():
    run_python('''
        import mmlion
        from mmengine.registry import DefaultScope
        assert build('mmlion.Lion') is mmlion.Lion
        with DefaultScope.overwrite_default_scope('mmdet'):
            assert build() is mmlion.Lion
            assert build('mmlion.Lion') is mmlion.Lion
        with DefaultScope.overwrite_default_scope('mmlion'):
            assert build() is mmlion.Lion
    ''')


def test_custom_imports_in_a_config_registers():
    run_python('''
        from mmengine.config import Config
        from mmengine.utils import import_modules_from_strings
        cfg = Config(dict(custom_imports=dict(imports=['mmlion'], allow_failed_imports=False)))
        import_modules_from_strings(**cfg.custom_imports)  # what the Runner does
        import mmlion
        assert build() is mmlion.Lion
    ''')
