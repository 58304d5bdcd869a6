"""Every workaround mmlion applies to MMEngine (and to torch for MMEngine's sake), in one
place.

Each :class:`Workaround` names the versions its bug was found in, says what goes wrong
without it, and checks at run time, against the installed code, that the bug is still
there: where it is gone (a fixed MMEngine, the OneDL fork, a GPU machine) the
workaround stands aside and mmlion runs MMEngine's own code. :func:`report` lists
them with their verdicts::

    python -c "import mmlion.engine.mmengine_fixes as f; print(*f.report(), sep='\\n')"


The fixes themselves are here too, each small; the strategies, the checkpoint hook and
``import mmlion`` call them.
"""
import contextlib
import functools
import importlib
import importlib.util
import inspect
import pickle
import re
from typing import Callable, Dict, List, NamedTuple

import numpy as np
import torch

__all__ = ['Workaround', 'WORKAROUNDS', 'needed', 'report',
           'apply_at_import', 'without_gpu', 'is_local_path', 'fsdp_old_argument_order',
           'deepspeed_optimizers_registered', 'register_deepspeed_optimizers',
           'infinite_iterator']


class Workaround(NamedTuple):
    found_in: str                 # the versions the bug was found in
    bug: str                      # what goes wrong without the workaround
    present: Callable[[], bool]   # True while the installed code still has the bug


@functools.lru_cache(maxsize=None)  # one read, and one warning, per object
def _source(obj) -> str:
    """``obj``'s source; '' where it cannot be read (a compiled build), said once: each
    check then assumes the bug is there."""
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        from mmengine.logging import print_log
        print_log(f'mmlion: cannot read the source of {getattr(obj, "__qualname__", obj)}; '
                  f"assuming MMEngine's bug is there and applying its workaround",
                  logger='current', level=30)
        return ''


# -- the checks ------------------------------------------------------------------------
def _mmengine_loads_unsafely() -> bool:
    from mmlion.utils.checkpoint import mmengine_loads_safely
    return hasattr(torch.serialization, 'add_safe_globals') and not mmengine_loads_safely()


def _lion_taken_in_mmengine() -> bool:
    import mmengine.optim  # noqa: F401  (it registers lion-pytorch's Lion, if installed)
    from mmengine.registry import OPTIMIZERS

    from mmlion.optim import Lion
    return OPTIMIZERS.module_dict.get('Lion') not in (None, Lion)


def _deepspeed_lost_onebit() -> bool:
    if importlib.util.find_spec('deepspeed') is None:
        return False
    from mmengine._strategy import deepspeed as mmengine_deepspeed
    try:
        onebit_gone = importlib.util.find_spec('deepspeed.runtime.fp16.onebit') is None
    except ImportError:
        onebit_gone = True
    source = _source(mmengine_deepspeed.register_deepspeed_optimizers)
    return onebit_gone and (not source or 'onebit' in source)


def _deepspeed_ignores_callbacks() -> bool:
    from mmengine._strategy.deepspeed import DeepSpeedStrategy
    return 'not supported yet' in _source(DeepSpeedStrategy.save_checkpoint) or \
        not _source(DeepSpeedStrategy.save_checkpoint)


def _fsdp_argument_order_differs() -> bool:
    from mmengine._strategy.fsdp import FSDPStrategy
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    first = next(iter(inspect.signature(FSDP.optim_state_dict_to_load).parameters))
    source = _source(FSDPStrategy)
    calls_old = not source or re.search(r'optim_state_dict_to_load\(\s*(optim_)?state_dict,',
                                        source) is not None
    return first == 'model' and calls_old


def _fsdp_clips_local_shards() -> bool:
    from mmengine._strategy.fsdp import FSDPStrategy
    return 'clip_grad_norm_' not in _source(FSDPStrategy)


def _saving_deletes_first() -> bool:
    from mmengine.hooks import CheckpointHook
    source = _source(CheckpointHook._save_checkpoint_with_step)
    removes, saves = source.find('.remove('), source.find('runner.save_checkpoint(')
    if saves < 0:
        return True  # not the code the check was written for: assume the bug
    return 0 <= removes < saves or "open(save_file, 'w')" in source


def _resume_replays_data() -> bool:
    from mmengine.runner import IterBasedTrainLoop
    source = _source(IterBasedTrainLoop.run)
    return not source or re.search(r'for _ in range\(self\._iter\):\s*next\(', source) is not None


def _scales_linearly_only() -> bool:
    from mmengine._strategy.base import BaseStrategy
    from mmengine.runner import Runner
    from mmlion.engine import lr_scaling
    if Runner.scale_lr is lr_scaling.runner_scale_lr:  # installed already: ask MMEngine's
        sources = [_source(m) for m in lr_scaling.MMENGINE_METHODS.values()]
    else:
        sources = [_source(Runner.scale_lr), _source(BaseStrategy._scale_lr)]
    return any(re.search(r"""auto_scale_lr(\.get\(|\[)['"]rule""", s) is None for s in sources)


WORKAROUNDS: Dict[str, Workaround] = {
    'safe_load': Workaround(
        'mmengine 0.10.7 with torch >= 2.6 (weights_only=True by default)',
        "torch.load's safe mode refuses what MMEngine pickles in every checkpoint "
        '(HistoryBuffer, numpy arrays, getattr(HistoryBuffer, "min")): resume=True and '
        'load_from fail. Fix: exactly those globals are allowed (apply_at_import).',
        _mmengine_loads_unsafely),
    'lion_name': Workaround(
        'mmengine 0.10 with lion-pytorch or bitsandbytes installed',
        "mmengine.optim registers another package's Lion as 'Lion', so type='Lion' "
        "would build it. Fix: mmlion's Lion replaces it, with one log line.",
        _lion_taken_in_mmengine),
    'deepspeed_onebit': Workaround(
        'mmengine 0.10.7 with deepspeed >= 0.19.7',
        "DeepSpeedStrategy's constructor imports deepspeed.runtime.fp16.onebit, which "
        'deepspeed removed: ImportError. Fix: the optimizers deepspeed still has are '
        'registered, the rest left out.',
        _deepspeed_lost_onebit),
    'deepspeed_callbacks': Workaround(
        'mmengine 0.10.7 (and onedl-mmengine 0.10.12)',
        "DeepSpeedStrategy.save_checkpoint and resume drop the runner's callbacks "
        '("not supported yet"), so no hook can add to or read a checkpoint. Fix: they run.',
        _deepspeed_ignores_callbacks),
    'fsdp_argument_order': Workaround(
        'mmengine 0.10.7 (and onedl-mmengine 0.10.12) with torch >= 2.2',
        'FSDPStrategy calls FSDP.optim_state_dict_to_load(optim_state_dict, model, optim); '
        'torch takes (model, optim, optim_state_dict): TypeError at resume and at the '
        "optimizer rebuild. Fix: MMEngine's calls get torch's order.",
        _fsdp_argument_order_differs),
    'fsdp_clip_local_shards': Workaround(
        'mmengine 0.10.7',
        "FSDPStrategy's OptimWrapper clips with torch.nn.utils.clip_grad_norm_ on each "
        "rank's shards alone, so every rank clips by another factor. Fix: the norm over "
        'all shards (FSDP.clip_grad_norm_).',
        _fsdp_clips_local_shards),
    'checkpoint_order': Workaround(
        'mmengine 0.10.7',
        'CheckpointHook deletes the outdated checkpoint before saving the new one, and '
        'writes last_checkpoint in place: a crash leaves fewer checkpoints and a pointer '
        'to a partial or deleted file. Fix: mmlion.engine.resume.atomic_saving.',
        _saving_deletes_first),
    'resume_replays_data': Workaround(
        'mmengine 0.10.7',
        'IterBasedTrainLoop resumed at iteration n loads and augments n batches only to '
        'throw them away. Fix: mmlion.engine.resume.resumed_data skips their indices.',
        _resume_replays_data),
    'lr_scaling': Workaround(
        'mmengine 0.10.7 (and onedl-mmengine 0.10.12)',
        'auto_scale_lr has one rule (linear in world size x per-process batch) and is '
        'blind to accumulative_counts, so an accumulating run scales its lr to the wrong '
        "batch. Fix: mmlion.engine.lr_scaling (a rule a config can name, 'linear', "
        "'sqrt' or any power of the batch; Lion's effective batch counted; other "
        "optimizers without a named rule keep MMEngine's code).",
        _scales_linearly_only),
}


@functools.lru_cache(maxsize=None)
def needed(name: str) -> bool:
    """Whether the bug behind workaround ``name`` is in the installed code (checked
    once per process)."""
    return WORKAROUNDS[name].present()


def report() -> List[str]:
    """One line per workaround: needed here or standing aside, and why."""
    return [f'{name}: {"applied" if needed(name) else "stands aside"} (found in '
            f'{w.found_in})' for name, w in WORKAROUNDS.items()]


# -- at import: torch's safe-load globals, and the name 'Lion' ------------------------
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


@functools.lru_cache(maxsize=None)
def _allowed_attributes():
    """``{class: names}`` the getattr stand-in may resolve (built once: a checkpoint
    calls the stand-in for every statistic of its message hub)."""
    from mmengine.logging import HistoryBuffer
    allowed = {HistoryBuffer: _HISTORY_BUFFER_METHODS}
    sharded_tensor_classes = _sharded_tensor_globals()
    if sharded_tensor_classes:
        allowed[sharded_tensor_classes[0]] = ('ProcessGroupState', )
    return allowed


def _checkpoint_getattr(obj, name):
    allowed = _allowed_attributes()
    if name in allowed.get(obj, ()):
        return getattr(obj, name)
    listed = ', '.join(f'{cls.__name__}.{"/".join(names)}' for cls, names in allowed.items())
    raise pickle.UnpicklingError(
        f'mmlion: refusing getattr({obj!r}, {name!r}) while loading a checkpoint; only '
        f'{listed} are allowed')


def _numpy_globals():
    core = getattr(np, '_core', None) or np.core
    found = [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype]
    # numpy >= 1.25 pickles dtypes through their classes (np.dtypes.Float64DType, ...)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        found += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return found


def _sharded_tensor_globals():
    """ShardedTensor (FSDP's local state dicts) first, then the classes it pickles with;
    none without distributed."""
    try:
        from torch.distributed._shard.metadata import ShardMetadata
        from torch.distributed._shard.sharded_tensor import metadata, shard
        from torch.distributed._shard.sharded_tensor.api import ShardedTensor
        from torch.distributed._shard.sharding_spec import ChunkShardingSpec
        from torch.distributed.remote_device import _remote_device
    except ImportError:  # torch built without distributed support
        return []
    return [ShardedTensor, ShardedTensor.ProcessGroupState, shard.Shard, ShardMetadata,
            metadata.ShardedTensorMetadata, metadata.TensorProperties,
            metadata.MEM_FORMAT_ENCODING, ChunkShardingSpec, _remote_device]


def _allow_mmengine_checkpoints() -> None:
    from mmengine.logging import HistoryBuffer
    torch.serialization.add_safe_globals(
        [HistoryBuffer, *_numpy_globals(), *_sharded_tensor_globals(),
         (_checkpoint_getattr, 'builtins.getattr')])


def _register_lion() -> None:
    import mmengine.optim  # noqa: F401  (must register its optimizers before ours)
    from mmengine.logging import print_log
    from mmengine.registry import OPTIMIZERS

    from mmlion.optim import Lion
    previous = OPTIMIZERS.module_dict.get('Lion')
    if needed('lion_name'):  # another package's Lion holds the name: say once it moves
        print_log(
            f"mmlion: 'Lion' in MMEngine's OPTIMIZERS was {previous.__module__}."
            f'{previous.__qualname__}; it now builds mmlion.optim.Lion '
            f"(use type='mmlion.Lion' to be explicit).",
            logger='current', level=30)
    if previous is not Lion:
        OPTIMIZERS.register_module(name='Lion', module=Lion, force=True)


def apply_at_import() -> None:
    """What ``import mmlion`` changes in MMEngine and torch (idempotent): the name
    'Lion', torch's safe-load globals, and ``auto_scale_lr``'s rule."""
    _register_lion()
    if needed('safe_load'):
        _allow_mmengine_checkpoints()
    if needed('lr_scaling'):
        _install_lr_scaling()


def _install_lr_scaling() -> None:
    """``Runner.scale_lr`` and ``BaseStrategy._scale_lr`` become mmlion's
    (:mod:`mmlion.engine.lr_scaling`), which hand every optimizer but Lion, with no rule
    named, to MMEngine's own method (idempotent)."""
    from mmengine._strategy.base import BaseStrategy
    from mmengine.runner import Runner

    from mmlion.engine import lr_scaling
    originals = lr_scaling.MMENGINE_METHODS  # kept where the replacements read them
    if not originals:
        originals['Runner.scale_lr'] = Runner.scale_lr
        originals['BaseStrategy._scale_lr'] = BaseStrategy._scale_lr
    Runner.scale_lr = lr_scaling.runner_scale_lr
    BaseStrategy._scale_lr = lr_scaling.strategy_scale_lr


def without_gpu() -> bool:
    """No CUDA device here. A fact of the machine, not a bug to detect: MMEngine 0.10's
    pytorch launcher, FSDP and DeepSpeed strategies and DDP wrapper assume a GPU (they
    call torch.cuda.set_device and pass CUDA device ids; FSDP's full state dicts
    offloaded to the CPU segfault on CPU tensors; DDP refuses SyncBN on the CPU), and
    where there is none mmlion's CPU paths run instead (gloo, CPU device ids, no
    offload, plain BN: :mod:`mmlion.cli.dist` and the strategies)."""
    return not torch.cuda.is_available()


# -- private MMEngine code mmlion relies on, named once -------------------------------
def is_local_path(path: str) -> bool:
    """True for a path on the local file system (no ``s3://``-style prefix), as
    MMEngine's file backends decide it."""
    from mmengine.fileio.io import _parse_uri_prefix
    return _parse_uri_prefix(path) == ''


def infinite_iterator(loader):
    """MMEngine's iterator over a data loader that restarts it at each epoch's end."""
    from mmengine.runner.loops import _InfiniteDataloaderIterator
    return _InfiniteDataloaderIterator(loader)


# -- the strategies' fixes -------------------------------------------------------------
@contextlib.contextmanager
def swapped(module, name: str, value):
    """``module.name`` is ``value`` inside the ``with`` block, and as before after it."""
    original = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, original)


def fsdp_old_argument_order():
    """While MMEngine's FSDP code runs, its ``FSDP`` takes MMEngine's argument order for
    ``optim_state_dict_to_load`` (where torch's differs)."""
    if not needed('fsdp_argument_order'):
        return contextlib.nullcontext()
    from mmengine._strategy import fsdp as mmengine_fsdp
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    class FSDPOldArgumentOrder(FSDP):

        @staticmethod
        def optim_state_dict_to_load(optim_state_dict, model, optim, *args, **kwargs):
            return FSDP.optim_state_dict_to_load(model, optim, optim_state_dict, *args,
                                                 **kwargs)

    return swapped(mmengine_fsdp, 'FSDP', FSDPOldArgumentOrder)


# deepspeed's optimizers MMEngine registers, by the module each lives in.
_DEEPSPEED_OPTIMIZERS = {
    'deepspeed.ops.adam': ('DeepSpeedCPUAdam', 'FusedAdam'),
    'deepspeed.ops.lamb': ('FusedLamb',),
    'deepspeed.runtime.fp16.onebit': ('OnebitAdam', 'OnebitLamb', 'ZeroOneAdam'),
}


def register_deepspeed_optimizers() -> List[str]:
    """What MMEngine's function of this name does, for the optimizers this deepspeed
    still has."""
    from mmengine.registry import OPTIMIZERS
    registered = []
    for module_name, names in _DEEPSPEED_OPTIMIZERS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in names:
            if hasattr(module, name) and name not in OPTIMIZERS.module_dict:
                OPTIMIZERS.register_module(module=getattr(module, name))
                registered.append(name)
    return registered


def deepspeed_optimizers_registered():
    """While MMEngine's DeepSpeedStrategy is built, it registers deepspeed's optimizers
    without importing the ones deepspeed removed."""
    if not needed('deepspeed_onebit'):
        return contextlib.nullcontext()
    from mmengine._strategy import deepspeed as mmengine_deepspeed
    return swapped(mmengine_deepspeed, 'register_deepspeed_optimizers',
                   register_deepspeed_optimizers)

