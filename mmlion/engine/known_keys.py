"""Which keys a config dict may hold, read from what consumes it, so that a typo is an
error naming the key and the closest known one, and the known keys follow the
installed MMEngine, torch or codebase instead of a hand list that drifts.

- :func:`accepted_keywords`: the keyword arguments a class takes, following
  ``**kwargs`` up its bases as ``super().__init__(**kwargs)`` hands them on. None where
  the chain ends in a ``**kwargs`` that goes somewhere unknown: then mmlion stands
  aside and checks nothing.
- :func:`keys_read`: the string keys a class's source reads from a dict of a given
  name (``cfg.get('k')``, ``cfg['k']``, ``'k' in cfg``, ``cfg.pop('k')``), over its
  bases: how MMEngine's ``DefaultOptimWrapperConstructor`` (and a codebase's own
  constructor) reads ``paramwise_cfg``, which no signature declares. None where the
  source cannot be read.
- :func:`check_keys`: the error for a key outside the known ones.
"""
import functools
import inspect
import re
from typing import FrozenSet, Iterable, Optional

from mmlion.utils.config_error import ConfigError, did_you_mean

__all__ = ['accepted_keywords', 'own_keywords', 'keyword_default', 'keys_read', 'check_keys']

# Classes whose ``**kwargs`` reach a function that already gets each of its arguments
# from the class itself, so that no further key can work: MMEngine's CheckpointHook
# hands its ``**kwargs`` to ``runner.save_checkpoint`` alongside every argument that
# takes (a TypeError at the first save, an epoch in).
_KWARGS_GO_NOWHERE = frozenset({'mmengine.hooks.checkpoint_hook.CheckpointHook'})
# What MMEngine's Registry.build takes out of any dict it builds from (Config adds
# _scope_ to the dicts a config inherits from another codebase's base config).
_REGISTRY_KEYS = frozenset({'type', '_scope_'})
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _parameters(function):
    try:
        return list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature
        return None


def own_keywords(function) -> Optional[FrozenSet[str]]:
    """The named keyword arguments of ``function`` itself (for a class, its
    ``__init__``, ``self`` left out); None where it has no signature or a
    ``**kwargs``."""
    parameters = _parameters(function.__init__ if isinstance(function, type) else function)
    if parameters is None or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    if isinstance(function, type):
        parameters = parameters[1:]
    return frozenset(p.name for p in parameters if p.kind in _NAMED)


@functools.lru_cache(maxsize=None)
def accepted_keywords(cls) -> Optional[FrozenSet[str]]:
    """Every keyword ``cls(...)`` can use, or None where its ``**kwargs`` go to a
    place no signature describes."""
    keys = set()
    for klass in cls.__mro__:
        if '__init__' not in vars(klass):
            continue
        if klass is object:
            return None  # a **kwargs handed on to object: unknown use
        parameters = _parameters(vars(klass)['__init__'])
        if parameters is None:
            return None
        keys.update(p.name for p in parameters[1:] if p.kind in _NAMED)
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return frozenset(keys)
        if f'{klass.__module__}.{klass.__qualname__}' in _KWARGS_GO_NOWHERE:
            return frozenset(keys)
    return None


def _reads(name: str):
    quoted = r"""['"](\w+)['"]"""
    return [re.compile(rf'{name}\s*\.\s*(?:get|pop|setdefault)\(\s*{quoted}'),
            re.compile(rf'{name}\s*\[\s*{quoted}\s*\]'),
            re.compile(rf'{quoted}\s+(?:not\s+)?in\s+(?:self\.)?{name}(?![\w.[])')]


@functools.lru_cache(maxsize=None)  # reading a source costs a parse; classes stay put
def keys_read(consumer, name: str) -> Optional[FrozenSet[str]]:
    """The string keys the source of ``consumer`` (a function, or a class and its
    bases) reads from ``name`` (a regular expression for the dict's name); None where a
    source cannot be read or reads no key at all (the code is not written as
    expected)."""
    keys = set()
    patterns = _reads(name)
    parts = consumer.__mro__[:-1] if isinstance(consumer, type) else (consumer,)
    for part in parts:  # object has no source
        try:
            source = inspect.getsource(part)
        except (OSError, TypeError):
            return None
        for pattern in patterns:
            keys.update(pattern.findall(source))
    return frozenset(keys) or None


def check_keys(key: str, given: Iterable[str], known: Iterable[str], what: str) -> None:
    """ConfigError naming the first of ``given`` outside ``known``, with the closest
    known key; ``what`` says what reads them ("MMEngine's OptimWrapper")."""
    known = set(known)
    for name in given:
        if name not in known and name not in _REGISTRY_KEYS:
            raise ConfigError(f'{key}.{name} is not a key that {what} reads'
                              f"{did_you_mean(name, known) or '.'} It reads {sorted(known)}")


def keyword_default(cls, name: str):
    """The default of keyword ``name`` where ``cls(...)`` takes it (through its bases'
    ``**kwargs`` too); ``inspect.Parameter.empty`` where no signature says."""
    for klass in cls.__mro__[:-1]:
        parameters = _parameters(vars(klass)['__init__']) if '__init__' in vars(klass) else []
        for parameter in parameters or ():
            if parameter.name == name and parameter.kind in _NAMED:
                return parameter.default
    return inspect.Parameter.empty
