"""Which implementation steps a list of tensors: the one place mmlion decides it.

``Lion`` asks :func:`choose` once per bucket of param groups when it builds its step
plan (:mod:`.step_plan`), and the step then calls the chosen function; a plan is reused
only while everything :func:`choose` read is the same (the flags, as values; the devices
and, tensor by tensor, whether the C++ kernel takes it). The functional
:func:`~mmlion.optim.lion.lion` asks once per call, as torch's ``adam()`` does. As in
torch, the optimizer-wide answers are decided when param groups are added:
:func:`hands_amp_scaling_to_step` (GradScaler's ``_step_supports_amp_scaling``) and
:func:`reads_flags_on_device` (the non-finite guard hands the step its verdict as a
device flag). Every implementation honours a GradScaler's ``grad_scale`` and
``found_inf`` and the guard's flag, so those two answers choose the fastest hand-over,
never a different result.

* ``fused=True``: the fused implementation; the device picks the kernel (the Triton
  kernel on CUDA, the C++ kernel on the CPU). Tensors neither takes are refused here,
  before any parameter is touched.
* ``foreach=True``: ``torch._foreach_*``; ``foreach=False``: the for-loop.
* Neither set: the C++ kernel on the CPU where it is built and takes every tensor, else
  torch's default (foreach on CUDA, the for-loop elsewhere). On CUDA the Triton kernel
  stays opt-in until it has been measured on a GPU.
* DTensor parameters (FSDP2): each rank steps its local shards (:mod:`.dtensor`), with
  the implementation chosen for them at each step, since the shards are the step's.
"""
import functools
from typing import Callable, List, NamedTuple, Sequence

from torch import Tensor
from torch.optim.optimizer import _default_to_fused_or_foreach

from mmlion.ops import lion_cpu, lion_triton
from .dtensor import DTensor, local_shards
from .functional import multi_tensor_lion, single_tensor_lion

__all__ = ['Implementation', 'choose', 'hands_amp_scaling_to_step', 'reads_flags_on_device']


class Implementation(NamedTuple):
    name: str         # 'fused', 'foreach', 'for-loop' or 'local shards'
    update: Callable  # update(params, grads, exp_avgs, *, lr, beta1, beta2, weight_decay,
    #                          initial_lr, maximize, cautious), and, on_device, grad_scale,
    #                          found_inf and host_plan
    on_device: bool   # reads lr, the GradScaler's flags and the guard's on the device


FOR_LOOP = Implementation('for-loop', single_tensor_lion, False)
FOREACH = Implementation('foreach', multi_tensor_lion, False)
FUSED_CPU = Implementation('fused', lion_cpu.fused_lion_, False)
FUSED_GPU = Implementation('fused', lion_triton.fused_lion_, True)


def choose(params: Sequence[Tensor], grads: Sequence[Tensor], exp_avgs: Sequence[Tensor],
           foreach, fused) -> Implementation:
    """The implementation for these (non-empty) lists with these flags. Raises, having
    touched nothing, for ``fused=True`` with tensors no fused kernel takes."""
    if isinstance(params[0], DTensor):
        return Implementation('local shards',
                              functools.partial(_on_local_shards, foreach=foreach, fused=fused),
                              False)
    return _choose_for_tensors(params, grads, exp_avgs, foreach, fused)


def _choose_for_tensors(params, grads, exp_avgs, foreach, fused) -> Implementation:
    device = params[0].device
    if fused:
        if lion_triton.runs_on(device):
            return FUSED_GPU
        if not lion_cpu.available():
            raise RuntimeError(f'fused=True needs the compiled mmlion kernel, which is not '
                               f'available: {lion_cpu.load_error()}')
        tensors = [*params, *grads, *exp_avgs]
        if not lion_cpu.takes(tensors):
            raise RuntimeError(f'fused=True: mmlion has fused kernels for plain CPU tensors '
                               f'and (with Triton) CUDA tensors, got '
                               f'{lion_cpu.describe_untaken(tensors)}; use foreach=True')
        return FUSED_CPU
    if foreach:
        return FOREACH
    if foreach is None and fused is None:
        if device.type == 'cpu':
            if not lion_cpu.available():
                lion_cpu.warn_unbuilt_once()
            elif lion_cpu.takes([*params, *grads, *exp_avgs]):
                return FUSED_CPU
        _, torch_foreach = _default_to_fused_or_foreach(list(params), differentiable=False,
                                                        use_fused=False)
        return FOREACH if torch_foreach else FOR_LOOP
    return FOR_LOOP


def _on_local_shards(params: List[Tensor], grads: List[Tensor], exp_avgs: List[Tensor], *,
                     foreach, fused, cautious: bool, **hyperparameters) -> None:
    """Each rank steps its local shards, with the implementation chosen for them (the
    DTensors themselves, through torch's dispatch, where they cannot be split). It reads
    no flags on the device: the caller honours a GradScaler's on the host."""
    params, grads, exp_avgs = local_shards(params, grads, exp_avgs, cautious)
    _choose_for_tensors(params, grads, exp_avgs, foreach, fused).update(
        params, grads, exp_avgs, cautious=cautious, **hyperparameters)


def hands_amp_scaling_to_step(param_groups: List[dict]) -> bool:
    """Whether a GradScaler hands the step its ``grad_scale`` and ``found_inf`` instead of
    unscaling itself: when every group asked for ``fused=True``, as for torch's fused
    AdamW."""
    return all(group['fused'] for group in param_groups)


def reads_flags_on_device(param_groups: List[dict]) -> bool:
    """Whether every step runs the Triton kernel (every group ``fused=True``, every
    parameter on a device it runs on), which skips on a flag on the device: a guard then
    hands it its verdict that way, with no host sync."""
    return hands_amp_scaling_to_step(param_groups) and all(
        lion_triton.runs_on(p.device) for group in param_groups for p in group['params'])
