"""The error a wrong config setting gets, anywhere in mmlion: a ``ValueError`` whose
message names the key and the value (and, for an unknown key, the closest known one)."""
import difflib
from typing import Iterable

__all__ = ['ConfigError', 'did_you_mean']


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and the value."""


def did_you_mean(name, known: Iterable[str], n: int = 1) -> str:
    """'; did you mean 'x'?' for the known names closest to ``name`` ('' if none is
    close)."""
    close = difflib.get_close_matches(str(name), sorted(set(known)), n=n, cutoff=0.6)
    if not close:
        return ''
    if len(close) == 1:
        return f'; did you mean {close[0]!r}?'
    return f'; did you mean one of {close}?'
