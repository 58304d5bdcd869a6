# lion_warmup-cosine.py for ResNet-50 detectors at a total batch of 16, 12 epochs.
# Their AdamW recipe (MMDetection's DETR family) is lr 1e-4, weight decay 0.05; Lion
# by the paper's rule at ratio 5 for a convolutional detector: lr 2e-5, weight decay
# 0.25 (lr * wd = 5e-6, as AdamW's).
_base_ = './lion_warmup-cosine.py'

base_lr = 2e-5
optim_wrapper = dict(optimizer=dict(lr=base_lr, weight_decay=0.25))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=500),
    dict(
        type='CosineAnnealingLR',
        eta_min=base_lr * 0.05,
        begin=0,
        end=12,
        T_max=12,
        by_epoch=True,
        convert_to_iter_based=True)
]
auto_scale_lr = dict(base_batch_size=16)
