"""Fixtures shared by the test modules."""
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='session')
def shapes_data():
    """The Shapes dataset the demo configs read from data/shapes/ (relative to the
    repository root, where the tests run), generated as tools/train.py would: once,
    and a no-op when an identical copy is there, as on a fresh clone it is not."""
    from mmlion.datasets.shapes import generate
    return generate(osp.join(ROOT, 'data', 'shapes'), quiet=True)
