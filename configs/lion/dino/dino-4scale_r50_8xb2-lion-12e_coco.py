# DINO-4scale R-50, 12 epochs, with Lion: a transformer detector, where Lion is most
# at home. MMDetection's AdamW there: lr 1e-4, weight decay 1e-4, backbone lr x 0.1,
# gradient clipping at 0.1. Lion by the paper's rule (ratio 10): lr 1e-5, weight
# decay 1e-3, betas (0.95, 0.98); the backbone multiplier, clipping and the step
# schedule stay MMDetection's.
_base_ = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'

custom_imports = dict(imports=['mmlion'], allow_failed_imports=False)

optim_wrapper = dict(
    type='mmlion.GuardedOptimWrapper',  # stops a run that goes NaN/Inf
    optimizer=dict(
        _delete_=True, type='Lion', lr=1e-5, betas=(0.95, 0.98), weight_decay=1e-3),
    paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0, flat_decay_mult=0))

# Checkpoints that resume bit for bit (RNG states, partial accumulation) and are
# written atomically: mmlion.engine.ResumableCheckpointHook.
default_hooks = dict(checkpoint=dict(type='mmlion.ResumableCheckpointHook'))
