# MMDetection's RTMDet-tiny recipe with Lion in place of AdamW.
# AdamW there: lr 4e-3, weight decay 0.05 at a total batch of 256. Lion, by the
# paper's rule (lr 3-10x smaller, weight decay 3-10x larger, lr * wd kept): lr 4e-4,
# weight decay 0.5, betas (0.95, 0.98) for stability. The cosine's eta_min keeps
# RTMDet's ratio (0.05 x lr). Everything else is MMDetection's.
_base_ = 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py'

custom_imports = dict(imports=['mmlion'], allow_failed_imports=False)

base_lr = 4e-4
max_epochs = 300
optim_wrapper = dict(
    type='mmlion.GuardedOptimWrapper',  # stops a run that goes NaN/Inf
    optimizer=dict(
        _delete_=True, type='Lion', lr=base_lr, betas=(0.95, 0.98), weight_decay=0.5),
    paramwise_cfg=dict(flat_decay_mult=0),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0e-5, by_epoch=False, begin=0, end=1000),
    dict(
        type='CosineAnnealingLR',
        eta_min=base_lr * 0.05,
        begin=max_epochs // 2,
        end=max_epochs,
        T_max=max_epochs // 2,
        by_epoch=True,
        convert_to_iter_based=True),
]
auto_scale_lr = dict(enable=False, base_batch_size=256)

# Checkpoints that resume bit for bit (RNG states, partial accumulation) and are
# written atomically: mmlion.engine.ResumableCheckpointHook.
default_hooks = dict(checkpoint=dict(type='mmlion.ResumableCheckpointHook'))
