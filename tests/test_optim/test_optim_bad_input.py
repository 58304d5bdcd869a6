"""Bad input to Lion, its step and state dict, its fused path, ZeRO and the guarded
wrapper: each row of docs/bad_input.md that mmlion.optim catches (see tests/bad_input.py)."""
import copy

import torch

from bad_input import Case, adamw_state, bad_input_test
from mmlion.optim import Lion, ZeroRedundancyOptimizer
from mmlion.optim.lion import lion as lion_fn

def lion(**kwargs):
    return lambda ctx, _: Lion(ctx.params, **kwargs)


def _sparse(ctx, _):
    ctx.params[1].grad = torch.sparse_coo_tensor([[0]], [1.0], (4,))
    ctx.optimizer.step()


def _two_groups(ctx, _):
    Lion([{'params': ctx.params}, {'params': [ctx.params[0]]}])


def _group_with_eps(ctx, _):
    ctx.optimizer.add_param_group({'params': [torch.nn.Parameter(torch.ones(2))], 'eps': 1e-8})


def _guarded_optimizer(ctx):
    ctx.optimizer = Lion(ctx.params, skip_nonfinite=True, max_consecutive_skips=2)
    ctx.optimizer.step()  # one good step, so there is momentum to keep


def _nonfinite_in_a_row(ctx, _):
    ctx.grad(float('nan'))
    ctx.optimizer.step()
    ctx.optimizer.step()


def _load_adamw(ctx, path=None):
    ctx.optimizer.load_state_dict(adamw_state(ctx).state_dict())


def _load_shape(ctx, path=None):
    other = Lion([torch.nn.Parameter(torch.randn(2, 3)), torch.nn.Parameter(torch.randn(4))])
    for p in other.param_groups[0]['params']:
        p.grad = torch.ones_like(p)
    other.step()
    ctx.optimizer.load_state_dict(other.state_dict())


def _load_groups(ctx, path=None):
    other = Lion([{'params': [ctx.params[0]]}, {'params': [ctx.params[1]]}])
    ctx.optimizer.load_state_dict(other.state_dict())


def _zero_without_dist(ctx, path=None):
    ZeroRedundancyOptimizer(ctx.params, optimizer_type='Lion', lr=1e-4)


def _guard_twice(ctx, _):
    from mmengine.optim import build_optim_wrapper
    build_optim_wrapper(torch.nn.Linear(2, 2), dict(
        type='mmlion.GuardedOptimWrapper', optimizer=dict(type='Lion', skip_nonfinite=True)))


def _scheduled(scheduler: str, **options):
    """A real MMEngine scheduler drives a value out of range; the next step refuses."""
    def run(ctx, _):
        import mmengine.optim as schedulers
        scheduler_ = getattr(schedulers, scheduler)(ctx.optimizer, by_epoch=False, **options)
        for _ in range(2):
            scheduler_.step()
        ctx.optimizer.step()
    return run


def _load_nonfinite_momentum(ctx, path=None):
    state_dict = copy.deepcopy(ctx.optimizer.state_dict())
    state_dict['state'][0]['exp_avg'][1, 2] = float('inf')
    ctx.optimizer.load_state_dict(state_dict)


def _fused_on_meta(ctx, _):
    meta = [torch.zeros(4, device='meta')]
    lion_fn(meta, meta, meta, fused=True, lr=1e-3, beta1=0.9, beta2=0.99, weight_decay=0.0)


CASES = [
    Case('lr-negative', lion(lr=-1e-4), ValueError, ('lr=-0.0001',),
         input='`Lion(params, lr=-1e-4)`',
         where='`Lion(...)` / `add_param_group`'),
    Case('lr-string', lion(lr='1e-4'), ValueError, ("lr='1e-4'", 'not a number'),
         input="`lr='1e-4'` (a string from a config)",
         where='`Lion(...)` / `add_param_group`'),
    Case('lr-nan', lion(lr=float('nan')), ValueError, ('lr=nan',),
         input='`lr=float("nan")`',
         where='`Lion(...)` / `add_param_group`'),
    Case('lr-inf', lion(lr=float('inf')), ValueError, ('lr=inf', 'finite'),
         input='`lr=float("inf")` (every weight NaN after one step)',
         where='`Lion(...)` / `add_param_group`'),
    Case('wd-inf', lion(lr=0.0, weight_decay=float('inf')), ValueError,
         ('weight_decay=inf', 'finite'),
         input='`lr=0, weight_decay=float("inf")` (0 * inf is NaN)',
         where='`Lion(...)` / `add_param_group`'),
    Case('scheduled-lr-negative', _scheduled('CosineAnnealingLR', T_max=2, eta_min=-1e-2),
         ValueError, ('param group 0', 'lr=-0.01', 'scheduler', 'changed no parameter'),
         input='`CosineAnnealingLR(eta_min=-1e-2)` drives lr below 0',
         where='`Lion.step`, before any write'),
    Case('scheduled-lr-times-wd', _scheduled('MultiStepLR', milestones=[1], gamma=1e4),
         ValueError, ('param group 0', 'lr=10.0', 'weight_decay=0.1', '>= 1'),
         input='`MultiStepLR(gamma=1e4)`: `lr * weight_decay >= 1`',
         where='`Lion.step`, before any write'),
    Case('scheduled-betas', _scheduled('MultiStepMomentum', milestones=[1], gamma=1.2),
         ValueError, ('param group 0', 'index 0', '1.08'),
         input='`MultiStepMomentum(gamma=1.2)` drives beta1 past 1',
         where='`Lion.step`, before any write'),
    Case('group-eps', _group_with_eps, ValueError, ('param group 1', 'eps=1e-08', 'epsilon'),
         input="`{'params': ..., 'eps': 1e-8}` (a param group, or a `custom_keys` rule)",
         where='`add_param_group`'),
    Case('lr-tensor-shape', lion(lr=torch.ones(2)), ValueError, ('learning rate', '(2,)'),
         input='`lr=torch.ones(2)`',
         where='`Lion(...)` / `add_param_group`'),
    Case('betas-length', lion(betas=(0.9,)), ValueError, ('betas=(0.9,)', 'pair'),
         input='`betas=(0.9,)`',
         where='`Lion(...)` / `add_param_group`'),
    Case('betas-one', lion(betas=(1.0, 0.99)), ValueError, ('index 0', 'betas=(1.0, 0.99)'),
         input='`betas=(1.0, 0.99)`',
         where='`Lion(...)` / `add_param_group`'),
    Case('betas-negative', lion(betas=(0.9, -0.1)), ValueError, ('index 1', '-0.1'),
         input='`betas=(0.9, -0.1)`',
         where='`Lion(...)` / `add_param_group`'),
    Case('betas-scalar', lion(betas=0.9), ValueError, ('betas=0.9',),
         input='`betas=0.9`',
         where='`Lion(...)` / `add_param_group`'),
    Case('wd-negative', lion(weight_decay=-0.1), ValueError, ('weight_decay=-0.1',),
         input='`weight_decay=-0.1`',
         where='`Lion(...)` / `add_param_group`'),
    Case('wd-string', lion(weight_decay='0.1'), ValueError, ("weight_decay='0.1'",),
         input="`weight_decay='0.1'`",
         where='`Lion(...)` / `add_param_group`'),
    Case('lr-times-wd', lion(lr=1e4, weight_decay=0.5), ValueError,
         ('lr=10000.0', 'weight_decay=0.5', '>= 1'),
         input='`lr=1e4, weight_decay=0.5` (`lr * weight_decay >= 1`)',
         where='`Lion(...)` / `add_param_group`'),
    Case('differentiable', lion(differentiable=True), ValueError, ('differentiable=True',),
         input='`differentiable=True`',
         where='`Lion(...)` / `add_param_group`'),
    Case('unknown-keyword', lion(eps=1e-8), TypeError, ('eps=1e-08', "AdamW's epsilon"),
         input='`eps=1e-8` left over from AdamW',
         where='`Lion(...)` / `add_param_group`'),
    Case('state-dtype-int', lion(state_dtype=torch.int8), ValueError,
         ('state_dtype=torch.int8',),
         input='`state_dtype=torch.int8`',
         where='`Lion(...)` / `add_param_group`'),
    Case('state-dtype-name', lion(state_dtype='bf17'), ValueError, ("state_dtype='bf17'",),
         input="`state_dtype='bf17'`",
         where='`Lion(...)` / `add_param_group`'),
    Case('flag-type', lion(maximize='yes'), ValueError, ("maximize='yes'",),
         input="`maximize='yes'`",
         where='`Lion(...)` / `add_param_group`'),
    Case('fused-and-foreach', lion(fused=True, foreach=True), ValueError,
         ('fused=True', 'foreach=True'),
         input='`fused=True, foreach=True`',
         where='`Lion(...)` / `add_param_group`'),
    Case('max-skips', lion(skip_nonfinite=True, max_consecutive_skips=0), ValueError,
         ('max_consecutive_skips=0',),
         input='`max_consecutive_skips=0`',
         where='`Lion(...)` / `add_param_group`'),
    Case('decoupled-zero-lr', lion(lr=0.0, decoupled_weight_decay=True), ValueError,
         ('initial_lr=0.0', 'decoupled_weight_decay=True'),
         input='`lr=0, decoupled_weight_decay=True`',
         where='`Lion(...)` / `add_param_group`'),
    Case('complex-state-dtype',
         lambda ctx, _: Lion([torch.nn.Parameter(torch.ones(2, dtype=torch.complex64))],
                          state_dtype='bfloat16'), ValueError,
         ('state_dtype=torch.bfloat16', 'complex'),
         input='complex parameter with `state_dtype=bfloat16`',
         where='`Lion(...)` / `add_param_group`'),
    Case('sparse-grad', _sparse, RuntimeError, ('sparse', 'param group 0, parameter 1'),
         input='a sparse gradient at `step()`',
         where='`Lion.step`, before any write'),
    Case('param-in-two-groups', _two_groups, ValueError, ('shape (4, 3)', 'group 0', 'group 1'),
         input='one parameter in two param groups',
         where='`Lion(...)` / `add_param_group`'),
    Case('nonfinite-in-a-row', _nonfinite_in_a_row, FloatingPointError,
         ('2 steps in a row', 'max_consecutive_skips=2', 'param group 0, parameter of shape'),
         setup=_guarded_optimizer,
         input='NaN gradients in `max_consecutive_skips` steps in a row',
         where='`Lion.step`, before any write'),
    Case('state-of-adamw', _load_adamw, ValueError, ("['amsgrad', 'eps']", 'another optimizer'),
         input="`load_state_dict` of AdamW's state",
         where='`Lion.load_state_dict`, before any change'),
    Case('state-shape', _load_shape, ValueError, ('shape (2, 3)', '(4, 3)'),
         input='state saved for other shapes',
         where='`Lion.load_state_dict`, before any change'),
    Case('state-nonfinite-momentum', _load_nonfinite_momentum, ValueError,
         ('parameter 0', 'exp_avg', '1 NaN/Inf value(s) of 12'),
         input='a state dict whose momentum holds NaN/Inf',
         where='`Lion.load_state_dict`, before any change'),
    Case('state-groups', _load_groups, ValueError, ('2 param groups', 'has 1'),
         input='state saved with another number of groups',
         where='`Lion.load_state_dict`, before any change'),
    Case('zero-without-dist', _zero_without_dist, RuntimeError, ('torch.distributed',
                                                                 'torchrun'),
         input='`mmlion.ZeroRedundancyOptimizer` without torchrun',
         where='ZeRO constructor'),
    Case('guard-twice', _guard_twice, ValueError, ('skip_nonfinite=True',),
         input='`GuardedOptimWrapper` around `Lion(skip_nonfinite=True)`',
         where='`GuardedOptimWrapper` constructor'),
    Case('fused-on-meta', _fused_on_meta, RuntimeError, ('fused=True', 'meta'),
         input='`fused=True` with meta tensors (or DTensors)',
         where='`lion(..., fused=True)`, before the kernel'),
]


test_bad_input = bad_input_test(CASES)
