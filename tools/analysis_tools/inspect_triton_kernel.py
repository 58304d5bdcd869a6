"""Compile mmlion's Triton Lion kernel for a GPU architecture, no GPU needed, and count
the memory instructions in its PTX: the full-block path should load and store with
128-bit vector instructions (``ld.global.v4``), 8 fp32 or bf16 elements per thread.

Example::

    python tools/analysis_tools/inspect_triton_kernel.py --arch 90 --ptx-dir ptx/
"""
import argparse
import os
import os.path as osp
import re
import sys

if os.environ.get('TRITON_INTERPRET', '0') != '0':
    sys.exit('unset TRITON_INTERPRET: the interpreter does not compile kernels')

import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from mmlion.ops import lion_triton, lion_triton_kernels  # noqa: E402

DTYPES = {'fp32': tl.float32, 'bf16': tl.bfloat16, 'fp16': tl.float16}
POINTER_TYPES = {'fp32': '*fp32', 'bf16': '*bf16', 'fp16': '*fp16'}
# The kernel's runtime arguments and their Triton types; the rest are constexprs.
ARGUMENTS = dict(table_ptr='*i64', n_tensors='i32', lr_ptr='*fp32', lr_value='fp32',
                 initial_lr_ptr='*fp32', initial_lr_value='fp32', weight_decay='fp32',
                 decay_value='fp32', beta1='fp32', one_minus_beta1='fp32', beta2='fp32',
                 one_minus_beta2='fp32', grad_scale_ptr='*fp32', skip_ptr='*fp32',
                 agree_ptr='*i64')
PATTERNS = ['ld.global.v4', 'ld.global.v2', 'st.global.v4', 'st.global.v2', 'bar.sync']


def compile_ptx(arch: int, param: str, state: str, **flags) -> str:
    """The PTX of ``lion_kernel`` for sm_``arch``, fp32 (or the given) dtypes."""
    fn = lion_triton_kernels.lion_kernel
    constexprs = dict(PARAM=DTYPES[param], STATE=DTYPES[state], LR_TENSOR=False, DECAY=0,
                      INITIAL_LR_TENSOR=False, MAXIMIZE=False, CAUTIOUS=False, UNSCALE=False,
                      SKIP=False, ALIGNED=True, BLOCK=lion_triton.BLOCK, SEARCH_STEPS=8,
                      BLOCKS_PER_PROGRAM=lion_triton.BLOCKS_PER_PROGRAM)
    constexprs.update(flags)
    signature = {name: ARGUMENTS.get(name, 'constexpr') for name in fn.arg_names}
    source = ASTSource(fn=fn, signature=signature, constexprs=constexprs,
                       attrs={(0,): [['tt.divisibility', 16]]})
    kernel = triton.compile(source, target=GPUTarget('cuda', arch, 32),
                            options=dict(num_warps=lion_triton.NUM_WARPS))
    return kernel.asm['ptx']


def count(ptx: str) -> dict:
    return {pattern: len(re.findall(re.escape(pattern), ptx)) for pattern in PATTERNS}


VARIANTS = {
    'fp32 params, fp32 state': dict(param='fp32', state='fp32'),
    'bf16 params, bf16 state': dict(param='bf16', state='bf16'),
    'bf16 params, fp32 state': dict(param='bf16', state='fp32'),
    'fp32 params, bf16 state': dict(param='fp32', state='bf16'),
    'fp32, tensor lr, GradScaler, guard': dict(param='fp32', state='fp32', LR_TENSOR=True,
                                               DECAY=1, UNSCALE=True, SKIP=True),
    'fp32, cautious, maximize': dict(param='fp32', state='fp32', CAUTIOUS=True,
                                     MAXIMIZE=True),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--arch', type=int, default=90, help='sm_XX (90: H100/H200)')
    parser.add_argument('--ptx-dir', help='write each variant\'s PTX here')
    args = parser.parse_args()
    print(f'triton {triton.__version__}, sm_{args.arch}, BLOCK={lion_triton.BLOCK}, '
          f'BLOCKS_PER_PROGRAM={lion_triton.BLOCKS_PER_PROGRAM}, '
          f'num_warps={lion_triton.NUM_WARPS}\n')
    print('| variant | ' + ' | '.join(PATTERNS) + ' |')
    print('| --- |' + ' ---: |' * len(PATTERNS))
    for name, variant in VARIANTS.items():
        ptx = compile_ptx(args.arch, **variant)
        counts = count(ptx)
        print(f'| {name} | ' + ' | '.join(str(counts[p]) for p in PATTERNS) + ' |')
        if args.ptx_dir:
            os.makedirs(args.ptx_dir, exist_ok=True)
            slug = re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_')
            with open(osp.join(args.ptx_dir, f'{slug}.ptx'), 'w') as f:
                f.write(ptx)


if __name__ == '__main__':
    main()
