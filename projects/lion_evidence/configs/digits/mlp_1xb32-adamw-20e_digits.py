# The convergence check's AdamW run: an MLP on scikit-learn's copy of the UCI
# handwritten digits (1437 train / 360 val images, 8x8), AdamW as one would tune it
# for a small MLP (lr 1e-3, weight decay 0.01), warmup then cosine, 20 epochs.
# Its Lion twin is converted from this file by tools/misc/adamw_to_lion.py.
custom_imports = dict(imports=['mmlion', 'projects.lion_evidence.demo'], allow_failed_imports=False)
default_scope = 'mmengine'

model = dict(type='DigitsMLP', hidden=128)
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='DigitsDataset', split='train'))
val_dataloader = dict(
    batch_size=120,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='DigitsDataset', split='val'))
val_evaluator = dict(type='DigitsAccuracy')
train_cfg = dict(by_epoch=True, max_epochs=20, val_interval=1)
val_cfg = dict()

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01),
    # No decay for biases (and norms, should the MLP get any), as OpenMMLab's recipes
    # do; the Lion twins inherit it, so only the optimizer differs.
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=45),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=20, T_max=20, eta_min=1e-5),
]

# tools/train.py --auto-scale-lr scales lr linearly from this batch (the batch-size sweep).
auto_scale_lr = dict(enable=False, base_batch_size=32)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=15),
    checkpoint=dict(type='mmlion.ResumableCheckpointHook', interval=20))
randomness = dict(seed=0)
