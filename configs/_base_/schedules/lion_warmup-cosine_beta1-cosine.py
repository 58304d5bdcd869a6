# lion_warmup-cosine.py plus a beta1 schedule: MMEngine's momentum schedulers set
# betas[0] of optimizers that have betas. beta1 weighs the current gradient in the
# sign; it goes from 0.95 down to 0.85 along the same cosine as lr, trusting the
# fresh gradient more as the steps shrink. beta2 (the momentum EMA) stays 0.98.
_base_ = './lion_warmup-cosine.py'

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=500),
    dict(
        type='CosineAnnealingLR',
        eta_min=4e-4 * 0.05,
        begin=0,
        end=12,
        T_max=12,
        by_epoch=True,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingMomentum',
        eta_min=0.85,
        begin=0,
        end=12,
        T_max=12,
        by_epoch=True,
        convert_to_iter_based=True)
]
