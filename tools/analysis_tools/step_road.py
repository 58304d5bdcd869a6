"""The road of one Lion step: every mmlion Python call it makes, once the step plan is
reused, the files it enters and how often it comes back to a file it left, and the
frames on the stack when the update math runs (the hops from ``Lion.step``).

    python tools/analysis_tools/step_road.py

A yardstick for how far a reader walks from ``Lion.step`` to the math (issue 28);
nothing here is timed.
"""
import os
import sys

import torch

import mmlion
from mmlion.optim import Lion

ROOT = os.path.dirname(os.path.dirname(mmlion.__file__))
MATH = ('_foreach_sign_', 'fused_lion_', 'sign_')


def _ours(frame) -> bool:
    return frame is not None and frame.f_code.co_filename.startswith(
        os.path.join(ROOT, 'mmlion'))


def _where(frame) -> str:
    return f'{os.path.relpath(frame.f_code.co_filename, ROOT)}:{frame.f_code.co_name}'


def road(**options):
    """(calls, files entered in order, hops to the math) of the third step of a small
    model under paramwise_cfg's one group per parameter."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.LayerNorm(4))
    optimizer = Lion([{'params': [p]} for p in model.parameters()], lr=1e-3,
                     weight_decay=0.1, **options)
    for _ in range(2):
        model(torch.ones(2, 8)).sum().backward()
        optimizer.step()
    model(torch.ones(2, 8)).sum().backward()
    calls, files, hops = [], [], []

    def profile(frame, event, arg):
        if event == 'c_call' and getattr(arg, '__name__', '') in MATH and not hops:
            stack = []
            while frame is not None:
                if _ours(frame):
                    stack.append(_where(frame))
                frame = frame.f_back
            stack.reverse()
            hops.append(stack[next(i for i, s in enumerate(stack) if s.endswith(':step')):]
                        + [f'C++ {arg.__name__}'])
            return
        if event == 'call' and _ours(frame):
            calls.append(_where(frame))
        now = frame if event == 'call' else frame.f_back
        if event in ('call', 'return') and _ours(now):
            name = os.path.relpath(now.f_code.co_filename, ROOT)
            if not files or files[-1] != name:
                files.append(name)

    sys.setprofile(profile)
    optimizer.step()
    sys.setprofile(None)
    return calls, files, hops[0]


def main() -> None:
    for options in (dict(), dict(foreach=True), dict(skip_nonfinite=True)):
        calls, files, hops = road(**options)
        reentries = sum(1 for i, f in enumerate(files) if f in files[:i])
        print(f'Lion({", ".join(f"{k}={v}" for k, v in options.items()) or "defaults"}): '
              f'{len(calls)} calls, {len(set(files))} files, {reentries} returns to a file '
              f'left, {len(hops) - 1} calls down to the op doing the math')
        print('  road: ' + ' | '.join(c.split('/')[-1] for c in calls))
        print('  math: ' + ' -> '.join(h.split('/')[-1] for h in hops))


if __name__ == '__main__':
    main()
