"""Triton kernels for a multi-tensor Lion step (one launch per list of tensors).

A list of tensors is described by one int64 *table* (built by
:mod:`mmlion.ops.lion_triton`), laid out as five rows::

    table[0*n + t]   data pointer of param t
    table[1*n + t]   data pointer of grad t
    table[2*n + t]   data pointer of exp_avg t
    table[3*n + t]   numel of tensor t
    table[4*n + t]   first program (block) of tensor t; table[5*n] = total blocks

A program steps ``BLOCKS_PER_PROGRAM`` consecutive blocks: it finds the first one's
tensor by a binary search of the last row (a few cached scalar loads) and walks on
from there, so the table grows with the number of tensors, not of blocks, and a model
of thousands of small tensors costs one launch. Every element is read once
(param, grad, exp_avg) and written once (param, exp_avg) in fp32 arithmetic with one
rounding per store: 20 bytes per fp32 parameter, 10 with bf16 params and state.

Full blocks take an unmasked path so that loads and stores vectorize (with
``ALIGNED``, the host has checked that every pointer is 16-byte aligned); the last
block of a tensor is masked. ``SKIP`` reads a flag on the device (the GradScaler's
``found_inf``, the non-finite guard's verdict) and then writes nothing: no host sync.
"""
import triton
import triton.language as tl


@triton.jit
def _locate(table_ptr, n_tensors, pid, SEARCH_STEPS: tl.constexpr):
    """The tensor that program ``pid`` works on, and the first element of its block.
    Empty tensors own no blocks and are never found."""
    starts = table_ptr + 4 * n_tensors
    lo = 0
    hi = n_tensors  # invariant: starts[lo] <= pid < starts[hi]
    for _ in tl.static_range(SEARCH_STEPS):
        mid = (lo + hi) // 2
        right = tl.load(starts + mid) <= pid
        lo = tl.where(right, mid, lo)
        hi = tl.where(right, hi, mid)
    return lo, pid - tl.load(starts + lo)


@triton.jit
def _pointer(table_ptr, row, n_tensors, t, DTYPE: tl.constexpr, OTHER: tl.constexpr,
             ALIGNED: tl.constexpr):
    """The data pointer of tensor ``t`` in ``row``, with its alignment hint: 16 bytes,
    capped at 8 for the narrower dtype of a mixed pair (fp32 params, bf16 state or the
    reverse), which otherwise compiles to staging through shared memory with barriers
    (twice the registers, half the occupancy); it then moves in 64-bit loads."""
    ptr = tl.load(table_ptr + row * n_tensors + t).to(tl.pointer_type(DTYPE))
    if ALIGNED:
        if DTYPE.primitive_bitwidth < OTHER.primitive_bitwidth:
            ptr = tl.multiple_of(ptr, 8)
        else:
            ptr = tl.multiple_of(ptr, 16)
    return ptr


@triton.jit
def _direction(m, g, beta1, one_minus_beta1):
    """sign(b1*m + (1-b1)*g) with sign(0) = 0 (and 0 for NaN, as on the CPU)."""
    c = m * beta1 + g * one_minus_beta1
    return (c > 0).to(tl.float32) - (c < 0).to(tl.float32)


@triton.jit
def _learning_rate(lr_ptr, lr_value, LR_TENSOR: tl.constexpr):
    if LR_TENSOR:
        return tl.load(lr_ptr).to(tl.float32)
    return lr_value


@triton.jit
def _decay(lr, initial_lr_ptr, initial_lr_value, weight_decay, decay_value,
           DECAY: tl.constexpr, INITIAL_LR_TENSOR: tl.constexpr):
    """1 - lr*wd (DECAY == 1), 1 - wd*lr/initial_lr (DECAY == 2), or the factor
    computed on the host in double precision when every input is a float (DECAY == 0)."""
    if DECAY == 1:
        return 1.0 - lr * weight_decay
    elif DECAY == 2:
        if INITIAL_LR_TENSOR:
            initial_lr = tl.load(initial_lr_ptr).to(tl.float32)
        else:
            initial_lr = initial_lr_value
        return 1.0 - weight_decay * lr / initial_lr
    else:
        return decay_value


@triton.jit
def lion_kernel(table_ptr, n_tensors,
                lr_ptr, lr_value, initial_lr_ptr, initial_lr_value, weight_decay, decay_value,
                beta1, one_minus_beta1, beta2, one_minus_beta2,
                grad_scale_ptr, skip_ptr, agree_ptr,
                PARAM: tl.constexpr, STATE: tl.constexpr,
                LR_TENSOR: tl.constexpr, DECAY: tl.constexpr, INITIAL_LR_TENSOR: tl.constexpr,
                MAXIMIZE: tl.constexpr, CAUTIOUS: tl.constexpr, UNSCALE: tl.constexpr,
                SKIP: tl.constexpr, ALIGNED: tl.constexpr,
                BLOCK: tl.constexpr, SEARCH_STEPS: tl.constexpr,
                BLOCKS_PER_PROGRAM: tl.constexpr):
    """Program ``pid`` steps blocks ``pid * BLOCKS_PER_PROGRAM`` onwards, as many as
    there are: one binary search finds the first block's tensor, and the next blocks
    walk on from it (to the next tensor where one ends), so the search is paid once per
    program, not per block."""
    lr = _learning_rate(lr_ptr, lr_value, LR_TENSOR)
    decay = _decay(lr, initial_lr_ptr, initial_lr_value, weight_decay, decay_value,
                   DECAY, INITIAL_LR_TENSOR)
    starts = table_ptr + 4 * n_tensors
    total = tl.load(starts + n_tensors)
    first = tl.program_id(0) * BLOCKS_PER_PROGRAM
    t, _ = _locate(table_ptr, n_tensors, first, SEARCH_STEPS)
    for i in tl.static_range(BLOCKS_PER_PROGRAM):
        pid = first + i
        if pid < total:
            while tl.load(starts + t + 1) <= pid:  # empty tensors own no blocks
                t += 1
            _step_block(table_ptr, n_tensors, t, pid - tl.load(starts + t), lr, decay,
                        beta1, one_minus_beta1, beta2, one_minus_beta2,
                        grad_scale_ptr, skip_ptr, agree_ptr, PARAM, STATE,
                        MAXIMIZE, CAUTIOUS, UNSCALE, SKIP, ALIGNED, BLOCK)


@triton.jit
def _step_block(table_ptr, n_tensors, t, block, lr, decay,
                beta1, one_minus_beta1, beta2, one_minus_beta2,
                grad_scale_ptr, skip_ptr, agree_ptr,
                PARAM: tl.constexpr, STATE: tl.constexpr, MAXIMIZE: tl.constexpr,
                CAUTIOUS: tl.constexpr, UNSCALE: tl.constexpr, SKIP: tl.constexpr,
                ALIGNED: tl.constexpr, BLOCK: tl.constexpr):
    """The update of block ``block`` of tensor ``t``."""
    n = tl.load(table_ptr + 3 * n_tensors + t)
    p_ptr = _pointer(table_ptr, 0, n_tensors, t, PARAM, STATE, ALIGNED)
    g_ptr = _pointer(table_ptr, 1, n_tensors, t, PARAM, STATE, ALIGNED)
    m_ptr = _pointer(table_ptr, 2, n_tensors, t, STATE, PARAM, ALIGNED)
    caution = 1.0
    if CAUTIOUS:
        share = tl.load(agree_ptr + t).to(tl.float32) / n.to(tl.float32)
        caution = 1.0 / tl.maximum(share, 1e-3)
    offs = block * BLOCK + tl.arange(0, BLOCK)
    # A full block has every lane in bounds: no per-lane mask, so loads and stores
    # vectorize. Only the last block of a tensor is masked per lane.
    if (block + 1) * BLOCK <= n:
        if SKIP:
            keep = tl.load(skip_ptr) == 0
            _update(p_ptr, g_ptr, m_ptr, offs, keep, True, grad_scale_ptr, lr, decay, caution,
                    beta1, one_minus_beta1, beta2, one_minus_beta2,
                    PARAM, STATE, MAXIMIZE, CAUTIOUS, UNSCALE)
        else:
            _update(p_ptr, g_ptr, m_ptr, offs, None, False, grad_scale_ptr, lr, decay, caution,
                    beta1, one_minus_beta1, beta2, one_minus_beta2,
                    PARAM, STATE, MAXIMIZE, CAUTIOUS, UNSCALE)
    else:
        mask = offs < n
        if SKIP:
            mask = tl.where(tl.load(skip_ptr) == 0, mask, False)
        _update(p_ptr, g_ptr, m_ptr, offs, mask, True, grad_scale_ptr, lr, decay, caution,
                beta1, one_minus_beta1, beta2, one_minus_beta2,
                PARAM, STATE, MAXIMIZE, CAUTIOUS, UNSCALE)


@triton.jit
def _update(p_ptr, g_ptr, m_ptr, offs, mask, MASKED: tl.constexpr, grad_scale_ptr,
            lr, decay, caution, beta1, one_minus_beta1, beta2, one_minus_beta2,
            PARAM: tl.constexpr, STATE: tl.constexpr, MAXIMIZE: tl.constexpr,
            CAUTIOUS: tl.constexpr, UNSCALE: tl.constexpr):
    """The Lion update of one block, in fp32, one rounding per store. With ``UNSCALE``
    the unscaled gradient is written back too, as torch's fused AdamW leaves it (and
    GradScaler.unscale_ would): code after the step reads true gradients."""
    g = _load_grad(g_ptr + offs, mask, MASKED, grad_scale_ptr, MAXIMIZE, UNSCALE)
    if UNSCALE:
        if MAXIMIZE:
            _store(g_ptr + offs, -g, mask, MASKED, PARAM)
        else:
            _store(g_ptr + offs, g, mask, MASKED, PARAM)
    m = _load(m_ptr + offs, mask, MASKED)
    p = _load(p_ptr + offs, mask, MASKED)
    # stepweight decay
    p = p * decay
    # weight update
    u = _direction(m, g, beta1, one_minus_beta1)
    if CAUTIOUS:
        u = tl.where(u * g > 0, u * caution, 0.0)
    p = p - lr * u
    # decay the momentum running average coefficient
    m = m * beta2 + g * one_minus_beta2
    _store(p_ptr + offs, p, mask, MASKED, PARAM)
    _store(m_ptr + offs, m, mask, MASKED, STATE)


@triton.jit
def _store(ptrs, values, mask, MASKED: tl.constexpr, DTYPE: tl.constexpr):
    if DTYPE == tl.bfloat16:
        stored = _round_to_bf16(values)
    else:
        stored = values.to(DTYPE)
    if MASKED:
        tl.store(ptrs, stored, mask=mask)
    else:
        tl.store(ptrs, stored)


@triton.jit
def _round_to_bf16(x):
    """fp32 to bf16, rounded to nearest, ties to even (NaN stays NaN), in integer bit
    operations: what torch's ``.to(torch.bfloat16)`` and the C++ kernel do, spelled out so
    that every backend agrees (Triton's interpreter truncates a plain ``.to``)."""
    bits = x.to(tl.uint32, bitcast=True)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    rounded = tl.where(x != x, 0x7FC0, rounded)
    return rounded.to(tl.uint16).to(tl.bfloat16, bitcast=True)


@triton.jit
def _load(ptrs, mask, MASKED: tl.constexpr):
    if MASKED:
        return tl.load(ptrs, mask=mask, other=0.0).to(tl.float32)
    return tl.load(ptrs).to(tl.float32)


@triton.jit
def _load_grad(ptrs, mask, MASKED: tl.constexpr, grad_scale_ptr, MAXIMIZE: tl.constexpr,
               UNSCALE: tl.constexpr):
    """The gradient in fp32, divided by the GradScaler's scale, negated to maximize."""
    g = _load(ptrs, mask, MASKED)
    if UNSCALE:
        g = g / tl.load(grad_scale_ptr).to(tl.float32)
    if MAXIMIZE:
        g = -g
    return g


@triton.jit
def agree_kernel(table_ptr, n_tensors, agree_ptr, beta1, one_minus_beta1, grad_scale_ptr,
                 PARAM: tl.constexpr, STATE: tl.constexpr, MAXIMIZE: tl.constexpr,
                 UNSCALE: tl.constexpr, ALIGNED: tl.constexpr,
                 BLOCK: tl.constexpr, SEARCH_STEPS: tl.constexpr):
    """For ``cautious``: per tensor, how many elements' update agrees in sign with the
    gradient (``agree_ptr``, int64, zeroed by the caller), the same ``_direction`` as
    :func:`lion_kernel` computes."""
    pid = tl.program_id(0)
    t, block = _locate(table_ptr, n_tensors, pid, SEARCH_STEPS)
    n = tl.load(table_ptr + 3 * n_tensors + t)
    g_ptr = _pointer(table_ptr, 1, n_tensors, t, PARAM, STATE, ALIGNED)
    m_ptr = _pointer(table_ptr, 2, n_tensors, t, STATE, PARAM, ALIGNED)
    offs = block * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    g = _load_grad(g_ptr + offs, mask, True, grad_scale_ptr, MAXIMIZE, UNSCALE)
    m = _load(m_ptr + offs, mask, True)
    u = _direction(m, g, beta1, one_minus_beta1)
    agree = tl.sum((u * g > 0).to(tl.int64), axis=0)
    # Only the sum matters, read by the next launch: no ordering with other memory.
    tl.atomic_add(agree_ptr + t, agree, sem='relaxed')
