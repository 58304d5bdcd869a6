# Converted from configs/lion/demo/rtmdet_tiny_1xb16-adamw-24e_shapes.py
# by tools/misc/adamw_to_lion.py --lr-ratio 3 --stable:
# lr / ratio, weight decay such that lr * weight_decay stays the same, and
# Lion's betas; everything else is inherited.
_base_ = 'rtmdet_tiny_1xb16-adamw-24e_shapes.py'

custom_imports = dict(imports=['mmlion'], allow_failed_imports=False)
optim_wrapper = dict(optimizer=dict(
    _delete_=True, type='Lion', lr=0.00133333, betas=(0.95, 0.98),
    weight_decay=0.15))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', eta_min=6.66667e-05, begin=0, end=24, T_max=24, by_epoch=True, convert_to_iter_based=True),
]
