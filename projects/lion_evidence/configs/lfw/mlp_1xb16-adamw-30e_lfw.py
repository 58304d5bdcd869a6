# AdamW on scikit-image's LFW subset (150 train / 50 val real 25x25 grey crops, faces
# against non-faces): the digits check's MLP and AdamW (lr 1e-3, weight decay 0.01), one
# epoch of warmup, then cosine, 30 epochs of batch 16. Its Lion twin is converted from
# this file by tools/misc/adamw_to_lion.py --lr-ratio 3.
_base_ = '../digits/mlp_1xb32-adamw-20e_digits.py'

model = dict(in_features=625, num_classes=2)
train_dataloader = dict(batch_size=16, dataset=dict(type='LFWSubsetDataset'))
val_dataloader = dict(batch_size=50, dataset=dict(type='LFWSubsetDataset'))
train_cfg = dict(max_epochs=30)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=10),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=30, T_max=30, eta_min=1e-5),
]
auto_scale_lr = dict(base_batch_size=16)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(interval=30))
