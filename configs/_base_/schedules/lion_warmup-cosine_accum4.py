# lion_warmup-cosine.py for small per-step batches: gradients are accumulated over
# 4 iterations before each Lion step, so the sign is taken of a 4x larger batch
# (Lion gains more from large batches than AdamW does). lr and weight decay are the
# same as the base recipe; the warmup still counts iterations, not steps.
_base_ = './lion_warmup-cosine.py'

optim_wrapper = dict(accumulative_counts=4)
