# AdamW on scikit-image's LFW subset (150 train / 50 val real 25x25 grey crops, faces
# against non-faces): an MLP as one would tune it (lr 1e-3, weight decay 0.01), one epoch
# of warmup, then cosine, 30 epochs of batch 16. Its Lion twin is converted from this
# file by tools/misc/adamw_to_lion.py --lr-ratio 3.
custom_imports = dict(imports=['mmlion', 'mmlion.demo'], allow_failed_imports=False)
default_scope = 'mmengine'

model = dict(type='mmlion.DigitsMLP', hidden=128, in_features=625, num_classes=2)
train_dataloader = dict(
    batch_size=16,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='mmlion.LFWSubsetDataset', split='train'))
val_dataloader = dict(
    batch_size=50,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='mmlion.LFWSubsetDataset', split='val'))
val_evaluator = dict(type='mmlion.DigitsAccuracy')
train_cfg = dict(by_epoch=True, max_epochs=30, val_interval=1)
val_cfg = dict()

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=10),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=30, T_max=30, eta_min=1e-5),
]
auto_scale_lr = dict(enable=False, base_batch_size=16)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(type='mmlion.ResumableCheckpointHook', interval=30))
randomness = dict(seed=0)
