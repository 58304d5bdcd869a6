# RTMDet-s with Lion: the tiny recipe's optimizer and schedule (same lr derivation:
# AdamW 4e-3 / 0.05 -> Lion 4e-4 / 0.5) on MMDetection's RTMDet-s.
_base_ = 'mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py'

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
