# lion_warmup-cosine.py with mixed precision (MMEngine's AmpOptimWrapper with mmlion's
# non-finite guard; needs a GPU). bf16 needs no loss scaling; for fp16 set dtype='float16' and
# loss_scale='dynamic'. Lion's update is a sign, so its step size does not depend on
# the gradient's scale; lr and weight decay are those of the fp32 recipe.
_base_ = './lion_warmup-cosine.py'

optim_wrapper = dict(type='mmlion.GuardedAmpOptimWrapper', dtype='bfloat16', loss_scale=1.0)
