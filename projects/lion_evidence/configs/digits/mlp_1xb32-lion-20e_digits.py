# Converted from projects/lion_evidence/configs/digits/mlp_1xb32-adamw-20e_digits.py
# by tools/misc/adamw_to_lion.py --lr-ratio 3:
# lr / ratio, weight decay such that lr * weight_decay stays the same, and
# Lion's betas; everything else is inherited.
_base_ = 'mlp_1xb32-adamw-20e_digits.py'

custom_imports = dict(imports=['mmlion', 'projects.lion_evidence.demo'], allow_failed_imports=False)
optim_wrapper = dict(optimizer=dict(
    _delete_=True, type='Lion', lr=0.000333333, betas=(0.9, 0.99),
    weight_decay=0.03))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=45),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=20, T_max=20, eta_min=3.33333e-06),
]
