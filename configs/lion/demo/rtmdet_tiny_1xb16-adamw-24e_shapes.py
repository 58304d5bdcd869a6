# The comparison for the main job: the same model, data and schedule with AdamW as
# RTMDet trains it (lr 4e-3, weight decay 0.05, betas (0.9, 0.999)).
_base_ = './rtmdet_tiny_1xb16-lion-24e_shapes.py'

base_lr = 4e-3
optim_wrapper = dict(optimizer=dict(
    _delete_=True, type='AdamW', lr=base_lr, betas=(0.9, 0.999), weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=100),
    dict(
        type='CosineAnnealingLR',
        eta_min=base_lr * 0.05,
        begin=0,
        end=24,
        T_max=24,
        by_epoch=True,
        convert_to_iter_based=True)
]
