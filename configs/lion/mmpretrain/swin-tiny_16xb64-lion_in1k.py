# mmpretrain's Swin-T ImageNet-1k recipe with Lion in place of AdamW. AdamW there:
# lr 1e-3, weight decay 0.05 (eps and betas (0.9, 0.999), which Lion has no use for) at
# a total batch of 1024. Lion, by the paper's rule: lr 1e-4, weight decay 0.5 (lr * wd
# = 5e-5, as upstream); the cosine's floor eta_min scales with lr (1e-5 -> 1e-6).
# mmpretrain's no-decay rules stay: norms, biases, other 1-D parameters, the absolute
# position embedding and the relative position bias tables. 20 epochs of warmup by
# iteration, cosine to epoch 300, clip_grad 5.0, as upstream.
_base_ = 'mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py'

custom_imports = dict(imports=['mmlion'], allow_failed_imports=False)

optim_wrapper = dict(
    type='mmlion.GuardedOptimWrapper',  # stops a run that goes NaN/Inf
    optimizer=dict(_delete_=True, type='Lion', lr=1e-4, betas=(0.9, 0.99), weight_decay=0.5))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=20,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=20),
]

default_hooks = dict(checkpoint=dict(type='mmlion.ResumableCheckpointHook'))
