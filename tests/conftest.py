"""Fixtures shared by the test modules."""
import pytest

from helpers import generate_shapes


@pytest.fixture(scope='session')
def shapes_data():
    """The Shapes dataset the demo configs read from data/shapes/ (relative to the
    repository root, where the tests run), generated as tools/run_main.sh does:
    once, and a no-op when mmlion's intact copy is there."""
    return generate_shapes()
