"""Replace a name in one of MMEngine's modules for the duration of a call: how the
strategies fix MMEngine code they inherit without copying it."""
import contextlib


@contextlib.contextmanager
def swapped(module, name: str, value):
    """``module.name`` is ``value`` inside the ``with`` block, and as before after it."""
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)
