# Converted from projects/lion_evidence/configs/lfw/mlp_1xb16-adamw-30e_lfw.py
# by tools/misc/adamw_to_lion.py --lr-ratio 3:
# lr / ratio, weight decay such that lr * weight_decay stays the same, and
# Lion's betas; everything else is inherited.
_base_ = 'mlp_1xb16-adamw-30e_lfw.py'

custom_imports = dict(imports=['mmlion', 'projects.lion_evidence.demo'], allow_failed_imports=False)
optim_wrapper = dict(optimizer=dict(
    _delete_=True, type='Lion', lr=0.000333333, betas=(0.9, 0.99),
    weight_decay=0.03))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=10),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=30, T_max=30, eta_min=3.33333e-06),
]
