# mmpretrain's ResNet-50 ImageNet-1k recipe with warmup and cosine (SGD, lr 0.8 with
# Nesterov momentum, weight decay 1e-4, total batch 2048), with Lion. mmpretrain has no
# AdamW recipe for ResNet-50, so the SGD lr is first put on AdamW's scale (/ 100, as
# tools/misc/adamw_to_lion.py does: 8e-3 at batch 2048) and then follows the paper's
# rule with ratio 10: Lion lr 8e-4, weight decay 0.1 (lr * wd = 8e-5, as upstream; SGD's
# decay was an L2 penalty, Lion's is decoupled). Norm and bias parameters get no decay,
# as in mmpretrain's own ResNet-50 recipes with adaptive optimizers (the RSB ones).
# 5 epochs of warmup by iteration, then cosine to epoch 100, as upstream.
_base_ = 'mmpretrain::resnet/resnet50_32xb64-warmup-coslr_in1k.py'

custom_imports = dict(imports=['mmlion'], allow_failed_imports=False)

optim_wrapper = dict(
    type='mmlion.GuardedOptimWrapper',  # stops a run that goes NaN/Inf
    optimizer=dict(_delete_=True, type='Lion', lr=8e-4, betas=(0.9, 0.99), weight_decay=0.1),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))

default_hooks = dict(checkpoint=dict(type='mmlion.ResumableCheckpointHook'))
