"""mmlion: the Lion optimizer (Chen et al. 2023) for OpenMMLab training.

What ``import mmlion`` (or ``custom_imports=dict(imports=['mmlion'])``) does to the
process, all of it here:

1. MMEngine's ``OPTIMIZERS`` registry: ``'Lion'`` builds :class:`mmlion.optim.Lion`
   (replacing lion-pytorch's or bitsandbytes' class, which ``mmengine.optim``
   registers under that name when they are installed; one log line says so), and
   mmlion's child registries add ``mmlion.Lion`` and ``mmlion.ZeroRedundancyOptimizer``.
2. MMEngine's ``OPTIM_WRAPPERS``, ``HOOKS`` and ``STRATEGIES`` (through mmlion's child
   registries): ``mmlion.GuardedOptimWrapper``, ``mmlion.GuardedAmpOptimWrapper``,
   ``mmlion.AtomicCheckpointHook``, ``mmlion.RngStateHook``, ``mmlion.PartialGradientHook``,
   ``mmlion.ShardedOptimizerHook``, ``mmlion.ResumableCheckpointHook`` (the four in one),
   ``mmlion.ConfigCheckHook``, ``mmlion.FSDPStrategy`` and
   ``mmlion.DeepSpeedStrategy`` (MMEngine's own ``'FSDPStrategy'`` and
   ``'DeepSpeedStrategy'`` are left as they are; mmlion's ``tools/train.py`` picks
   mmlion's).
3. MMEngine's file backends: ``'mmlion_atomic_local'`` (atomic writes that replace
   only mmlion's own files), used only where the checkpoint hook asks for it.
4. ``torch.serialization``'s safe globals, where this MMEngine does not load its
   checkpoints safely itself: exactly what they pickle (``HistoryBuffer``, numpy arrays
   and dtypes, ``HistoryBuffer``'s statistics), so ``torch.load``'s safe default reads
   them.
5. ``auto_scale_lr`` (``Runner.scale_lr`` and the strategies' ``_scale_lr``): a config
   may name the rule (``'linear'``, ``'sqrt'`` or a power of the batch; Lion's
   default is ``batch ** 0.75``); Lion's batch counts
   ``accumulative_counts``; other optimizers without a named rule run MMEngine's own
   code (:mod:`mmlion.engine.lr_scaling`).

1, 4 and 5 are workarounds of :mod:`mmlion.engine.mmengine_fixes`, which holds every
change mmlion makes to MMEngine's behaviour and applies each only where the installed
code still needs it.

Nothing else: no files are read or written, no threads or environment variables are
changed. The compiled code (the CPU kernel, and the step plan's checks, which a GPU
step uses too) is loaded at the first step on any device; where the install did not
build it, it is compiled then, once (about 30 s with a C++ compiler; without one the
steps run without a plan), see :mod:`mmlion.ops.loader`.
Triton is imported at the first fused GPU step; deepspeed, where installed, is imported
by MMEngine's strategies module, which the strategies above extend.
"""
from .utils.versions import require_stack

require_stack()  # torch >= 2.1 and MMEngine (mmengine or onedl-mmengine) >= 0.10, or a clear error

from . import engine  # noqa: E402,F401  (registers the hook, file backend and strategies)
from .optim import Lion  # noqa: E402
from .engine.mmengine_fixes import apply_at_import  # noqa: E402
from .version import __version__  # noqa: E402

apply_at_import()  # 'Lion' in MMEngine's OPTIMIZERS; torch's safe-load globals

__all__ = ['Lion', '__version__']
