"""The fused Lion step on the GPU: one Triton launch per list of tensors (the kernels
are in :mod:`.lion_triton_kernels`, loaded by :data:`mmlion.ops.loader.TRITON`).

:func:`fused_lion_` is what ``Lion(fused=True)`` runs for CUDA tensors. It checks
what it is given (:func:`untaken`) and raises, touching nothing, on what it cannot
take; it reads the learning rate, the GradScaler's ``grad_scale`` and ``found_inf``
and the guard's skip flag on the device, so a step makes no host sync.

Triton's interpreter (``TRITON_INTERPRET=1``) runs the same kernels on CPU tensors;
the tests use it, by adding ``'cpu'`` to :data:`DEVICE_TYPES`, where no GPU is.
"""
import contextlib
from collections import OrderedDict
from itertools import accumulate
from typing import List, NamedTuple, Optional, Sequence

import torch
from torch import Tensor

from .common import (PLAIN_TYPES, as_real, as_scalar, decay_factor, layout_key,
                     refuse_graph_capture)
from .loader import TRITON

__all__ = ['DEVICE_TYPES', 'available', 'load_error', 'runs_on', 'untaken', 'fused_lion_']

DEVICE_TYPES = {'cuda'}  # where fused=True means the Triton kernel (ROCm is 'cuda' too)
BLOCK = 1024             # elements per block: 4 KiB of each fp32 tensor
BLOCKS_PER_PROGRAM = 4   # blocks a program of the step kernel steps (one search each)
NUM_WARPS = 4
# Pointer tables kept on the device, most recent first: one per (bucket, dtype pair)
# of a step; mmpretrain's layer-wise lr decay makes about 50 buckets.
_TABLE_CACHE_SIZE = 256

_SUPPORTED = (torch.float32, torch.bfloat16, torch.float16)
_tables: 'OrderedDict[tuple, DeviceTable]' = OrderedDict()


def available() -> bool:
    """True when Triton imports and the kernels compile."""
    return TRITON.get() is not None


def load_error() -> str:
    return TRITON.load_error()


def runs_on(device: torch.device) -> bool:
    """True when ``fused=True`` means this module's kernel for tensors on ``device``."""
    return device.type in DEVICE_TYPES


def untaken(params: Sequence[Tensor], grads: Sequence[Tensor],
            exp_avgs: Sequence[Tensor]) -> Optional[str]:
    """Why the kernel cannot take these lists (naming the first tensor it cannot
    take), or None when it takes them all."""
    if not (len(params) == len(grads) == len(exp_avgs)):
        return (f'{len(params)} params, {len(grads)} grads and {len(exp_avgs)} exp_avgs '
                f'(one of each per parameter)')
    device = params[0].device if params else None
    for i, trio in enumerate(zip(params, grads, exp_avgs)):
        for role, t in zip(('param', 'grad', 'exp_avg'), trio):
            if type(t) not in PLAIN_TYPES or t.layout != torch.strided:
                return f'{role} {i} is a {type(t).__name__} ({t.layout})'
            if t.device != device or not runs_on(t.device):
                return f'{role} {i} is on {t.device} (params[0] on {device})'
            if t.dtype not in _SUPPORTED:
                return f'{role} {i} is {t.dtype} (the kernel takes fp32, bf16 and fp16)'
            if t.is_conj() or t.is_neg():  # lazy views: the memory holds other values
                return (f'{role} {i} has its {"conjugate" if t.is_conj() else "negative"} '
                        f'bit set (resolve_conj() or resolve_neg() it)')
        param, grad, exp_avg = trio
        if grad.dtype != param.dtype:
            return f'grad {i} is {grad.dtype} and its param {param.dtype}'
        if not (param.shape == grad.shape and param.numel() == exp_avg.numel()):
            return (f'param {i} {tuple(param.shape)}, grad {tuple(grad.shape)} and exp_avg '
                    f'{tuple(exp_avg.shape)} differ')
    return None


def fused_lion_(params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor], *,
                lr, beta1: float, beta2: float, weight_decay: float, initial_lr,
                maximize: bool, cautious: bool, grad_scale: Optional[Tensor] = None,
                found_inf: Optional[Tensor] = None, host_plan: Optional[dict] = None) -> None:
    """The Lion step over the lists (complex tensors viewed as real), in place: one
    launch per (param dtype, state dtype) pair and alignment (two with ``cautious``).
    ``grad_scale`` divides the gradients; a nonzero ``found_inf`` (a device flag) makes
    the step write nothing.

    ``host_plan``: a dict the caller keeps for these lists across steps (``Lion.step``
    keeps one per bucket). The checks, the splits and the pointer tables of one step are
    kept in it and reused while every tensor keeps its storage and layout (a
    :func:`~.common.layout_key` per step); a step that had to copy a tensor keeps
    nothing."""
    kernels = TRITON.get()
    if kernels is None:
        raise RuntimeError(f'fused=True on the GPU needs Triton, which failed to load '
                           f'({TRITON.load_error()}); pip install triton, or use foreach=True')
    if not params:
        return
    device = params[0].device
    refuse_graph_capture(device, 'Lion(fused=True)')
    with _on_device(device):
        _step(kernels, device, params, grads, exp_avgs, lr=lr, beta1=beta1, beta2=beta2,
              weight_decay=weight_decay, initial_lr=initial_lr, maximize=maximize,
              cautious=cautious, grad_scale=grad_scale, found_inf=found_inf,
              host_plan=host_plan)


def _on_device(device: torch.device):
    """Triton launches on the current CUDA device (and torch allocates there): make it
    the tensors' for the step, where another is current."""
    if device.type == 'cuda' and device.index is not None and \
            device.index != torch.cuda.current_device():
        return torch.cuda.device(device)
    return contextlib.nullcontext()


def _step(kernels, device, params, grads, exp_avgs, *, lr, beta1, beta2, weight_decay,
          initial_lr, maximize, cautious, grad_scale, found_inf, host_plan) -> None:
    key = layout_key(params, grads, exp_avgs) if host_plan is not None else None
    reuse = key is not None and host_plan.get('layout_key') == key
    if not reuse:
        params, grads, exp_avgs = as_real(params, grads, exp_avgs)
        reason = untaken(params, grads, exp_avgs)
        if reason is not None:
            raise RuntimeError(f'fused=True: the Triton Lion kernel cannot take these '
                               f'tensors: {reason}; use foreach=True')
    lr, initial_lr = _on_device_or_float(lr, device), _on_device_or_float(initial_lr, device)
    scalars = _scalars(lr, beta1, beta2, weight_decay, initial_lr, grad_scale, found_inf)
    flags = dict(maximize=maximize, cautious=cautious)
    if reuse:
        for launch in host_plan['launches']:
            _launch(kernels, launch, scalars, **flags)
        return
    launches, copied = [], False
    for (param_dtype, state_dtype), (ps, gs, ms) in _by_dtype(params, grads, exp_avgs).items():
        with _dense(ps, gs, ms) as dense:
            copied = copied or bool(dense.write_back)
            for aligned, group in _by_alignment(*dense.lists):
                launch = Launch.of(_table(*group), len(group[0]), param_dtype, state_dtype,
                                   aligned)
                _launch(kernels, launch, scalars, **flags)
                launches.append(launch)
    if host_plan is not None:
        host_plan.clear()
        if not copied and key is not None:
            host_plan.update(layout_key=key, launches=launches)


class Launch(NamedTuple):
    """One kernel launch of a step, as a host plan keeps it."""
    table: 'DeviceTable'
    n_tensors: int
    constants: dict  # the kernels' compile-time arguments

    @classmethod
    def of(cls, table: 'DeviceTable', n_tensors: int, param_dtype: torch.dtype,
           state_dtype: torch.dtype, aligned: bool) -> 'Launch':
        triton_dtype = _triton_dtypes()
        return cls(table, n_tensors, dict(
            PARAM=triton_dtype[param_dtype], STATE=triton_dtype[state_dtype], ALIGNED=aligned,
            BLOCK=BLOCK, SEARCH_STEPS=search_steps(n_tensors), num_warps=NUM_WARPS))


def _on_device_or_float(value, device: torch.device):
    """A learning rate the kernel can read: a Tensor on the parameters' device stays one
    (read there, no sync); a CPU Tensor, which torch's fused optimizers accept too, is
    read on the host as a float (no device sync either); anything else is as given."""
    if isinstance(value, Tensor) and value.device.type == 'cpu' and device.type != 'cpu':
        return float(value)
    return value


def _by_dtype(params, grads, exp_avgs) -> dict:
    """The lists split by (param dtype, exp_avg dtype)."""
    groups: dict = {}
    for p, g, m in zip(params, grads, exp_avgs):
        lists = groups.setdefault((p.dtype, m.dtype), ([], [], []))
        for values, t in zip(lists, (p, g, m)):
            values.append(t)
    return groups


def _by_alignment(ps, gs, ms) -> list:
    """``(True, lists)`` of the trios whose three tensors start on 16-byte boundaries,
    then ``(False, lists)`` of the rest: each is its own launch, so one tensor at an odd
    offset (a view, a DDP bucket, an FSDP2 shard) no longer drops every other tensor to
    narrow loads."""
    aligned, unaligned = ([], [], []), ([], [], [])
    for trio in zip(ps, gs, ms):
        lists = aligned if all(t.data_ptr() % 16 == 0 or t.numel() == 0 for t in trio) \
            else unaligned
        for values, t in zip(lists, trio):
            values.append(t)
    return [(flag, lists) for flag, lists in ((True, aligned), (False, unaligned))
            if lists[0]]


class _dense:
    """The lists with every (param, grad, exp_avg) trio sharing one dense layout, so
    the kernel can walk raw memory; a trio that does not is worked on in contiguous
    copies, written back on exit (rare: autograd gives grads their param's layout)."""

    def __init__(self, ps, gs, ms):
        self.lists = ([], [], [])
        self.write_back = []
        for p, g, m in zip(ps, gs, ms):
            if not (_dense_layout(p) and g.stride() == p.stride()
                    and m.stride() == p.stride()):
                p_work, m_work = p.contiguous(), m.contiguous()
                self.write_back += [(p, p_work), (m, m_work)]
                p, g, m = p_work, g.contiguous(), m_work
            for values, t in zip(self.lists, (p, g, m)):
                values.append(t)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if exc_info[0] is None:
            for original, work in self.write_back:
                if work is not original:
                    original.copy_(work)
        return False


def _dense_layout(t: Tensor) -> bool:
    """True when ``t`` covers its memory without gaps or overlaps in a layout torch
    makes (contiguous or channels-last)."""
    if t.is_contiguous():
        return True
    if t.dim() == 4:
        return t.is_contiguous(memory_format=torch.channels_last)
    return t.dim() == 5 and t.is_contiguous(memory_format=torch.channels_last_3d)


def _scalars(lr, beta1, beta2, weight_decay, initial_lr, grad_scale, found_inf) -> dict:
    """Kernel arguments for the hyperparameters. Tensors (lr, initial_lr, grad_scale,
    found_inf) are passed as pointers and read on the device; when lr and initial_lr
    are floats the decay factor is computed here in double precision, as the
    for-loop's ``p.mul_(1 - lr * wd)`` does."""
    lr_tensor = isinstance(lr, Tensor)
    initial_tensor = isinstance(initial_lr, Tensor)
    if not lr_tensor and not initial_tensor:
        decay_mode = 0
        decay = decay_factor(lr, weight_decay, initial_lr)
    else:
        decay_mode, decay = (1 if initial_lr is None else 2), 1.0
    return dict(
        lr_ptr=as_scalar(lr) if lr_tensor else None, lr_value=0.0 if lr_tensor else float(lr),
        initial_lr_ptr=as_scalar(initial_lr) if initial_tensor else None,
        initial_lr_value=(float(initial_lr) if initial_lr is not None and not initial_tensor
                          else 1.0),
        weight_decay=float(weight_decay), decay_value=float(decay),
        beta1=float(beta1), one_minus_beta1=1.0 - beta1,
        beta2=float(beta2), one_minus_beta2=1.0 - beta2,
        grad_scale_ptr=as_scalar(grad_scale), skip_ptr=as_scalar(found_inf),
        LR_TENSOR=lr_tensor, DECAY=decay_mode, INITIAL_LR_TENSOR=initial_tensor,
        UNSCALE=grad_scale is not None, SKIP=found_inf is not None)


# Pointer arguments: None where a launch does not read them (_launch passes a placeholder).
_POINTERS = ('lr_ptr', 'initial_lr_ptr', 'grad_scale_ptr', 'skip_ptr')


def _launch(kernels, launch: Launch, scalars: dict, *, maximize: bool,
            cautious: bool) -> None:
    n_blocks, n = launch.table.n_blocks, launch.n_tensors
    if n_blocks == 0:
        return
    table = launch.table.on_current_stream()
    placeholder = table  # for pointer arguments a launch does not read
    args = dict(scalars)
    for key in _POINTERS:
        if args[key] is None:
            args[key] = placeholder
    grid = (n_blocks,)
    agree = placeholder
    if cautious:
        agree = torch.zeros(n, dtype=torch.int64, device=table.device)
        kernels.agree_kernel[grid](
            table, n, agree, args['beta1'], args['one_minus_beta1'], args['grad_scale_ptr'],
            MAXIMIZE=maximize, UNSCALE=args['UNSCALE'], **launch.constants)
    programs = (-(-n_blocks // BLOCKS_PER_PROGRAM),)
    kernels.lion_kernel[programs](table, n, agree_ptr=agree, MAXIMIZE=maximize,
                                  CAUTIOUS=cautious, BLOCKS_PER_PROGRAM=BLOCKS_PER_PROGRAM,
                                  **args, **launch.constants)


def search_steps(n_tensors: int) -> int:
    """Binary-search steps enough for ``n_tensors``, rounded up to a multiple of 4: each
    value compiles a kernel variant, so a count that grows past a power of two (a new
    param group) does not compile a new one; extra steps leave the search where it is."""
    return 4 * max(1, -(-n_tensors.bit_length() // 4))


def _triton_dtypes() -> dict:
    import triton.language as tl
    return {torch.float32: tl.float32, torch.bfloat16: tl.bfloat16, torch.float16: tl.float16}


class DeviceTable:
    """A pointer table on the device, safe to read from any stream: a stream other than
    the one that copied it waits for the copy (an event, on the device), and is recorded
    with the allocator, so evicting the table never frees memory a launch still reads."""

    def __init__(self, host: Tensor, device: torch.device, n_blocks: int):
        self.n_blocks = n_blocks
        self.tensor = host.to(device, non_blocking=True)
        self.copied, self.streams = None, set()
        if device.type == 'cuda':
            self.copied = torch.cuda.Event()
            self.copied.record()
            self.streams.add(torch.cuda.current_stream(device))

    def on_current_stream(self) -> Tensor:
        if self.copied is not None:
            stream = torch.cuda.current_stream(self.tensor.device)
            if stream not in self.streams:
                stream.wait_event(self.copied)
                self.tensor.record_stream(stream)
                self.streams.add(stream)
        return self.tensor


def _table(ps: Sequence[Tensor], gs: Sequence[Tensor], ms: Sequence[Tensor]) -> DeviceTable:
    """The int64 table the kernels read (see :mod:`.lion_triton_kernels`) and the
    number of programs to launch. Tables are cached on the device by their contents, so
    a training loop whose tensors stay put copies nothing to the device after its first
    steps (and a host plan does not even look them up)."""
    pointers = [t.data_ptr() for t in ps] + [t.data_ptr() for t in gs] + \
        [t.data_ptr() for t in ms]
    numels = [t.numel() for t in ps]
    device = ps[0].device
    key = (device, *pointers, *numels)
    cached = _tables.get(key)
    if cached is not None:
        _tables.move_to_end(key)
        return cached
    starts = list(accumulate((-(-n // BLOCK) for n in numels), initial=0))
    host = torch.tensor(pointers + numels + starts, dtype=torch.int64,
                        pin_memory=device.type == 'cuda')
    cached = _tables[key] = DeviceTable(host, device, starts[-1])
    if len(_tables) > _TABLE_CACHE_SIZE:
        _tables.popitem(last=False)
    return cached
