# mmpretrain's ViT with mmlion's ViT-B/16 Lion recipe (lr 3e-4, weight decay 3.0, no
# decay for cls_token and pos_embed, clip_grad 1.0, warmup then cosine), shrunk to run
# on a CPU in a minute: a 4-layer, 64-wide ViT on the 32x32 crops of the Shapes
# dataset (circle, square, triangle; `bash tools/run_main.sh` or
# tools/dataset_converters/generate_shapes.py writes them). Trains from scratch.
_base_ = '../mmpretrain/vit-base-p16_64xb64-lion_in1k.py'

model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=64, num_layers=4, num_heads=4,
                            feedforward_channels=128),
                  img_size=32, patch_size=4, drop_rate=0.0),
    head=dict(num_classes=3, in_channels=64, hidden_dim=None,
              loss=dict(_delete_=True, type='CrossEntropyLoss')),
    train_cfg=dict(_delete_=True))
data_preprocessor = dict(num_classes=3)

data_root = 'data/shapes/'
train_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root,
                 data_prefix='train_crops',
                 pipeline=[dict(type='LoadImageFromFile'),
                           dict(type='RandomFlip', prob=0.5, direction='horizontal'),
                           dict(type='PackInputs')]),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=64, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root,
                 data_prefix='val_crops',
                 pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')]))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

max_epochs = 6
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, by_epoch=True, begin=1,
         end=max_epochs),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
auto_scale_lr = dict(base_batch_size=32)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=max_epochs))
randomness = dict(seed=0)
