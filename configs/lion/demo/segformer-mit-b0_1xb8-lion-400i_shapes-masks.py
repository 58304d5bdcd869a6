# mmseg's SegFormer MiT-B0 with mmlion's SegFormer Lion recipe (10x lr for the decode
# head, no decay for norms, betas (0.95, 0.98), warmup then poly decay,
# IterBasedTrainLoop over an InfiniteSampler), shrunk to run on a CPU in two minutes:
# 400 iterations of batch 8 on the Shapes dataset's 128x128 images and semantic masks
# (background, circle, square, triangle). It trains from scratch, so its lr is 50x the
# recipe's 2e-5 (which fine-tunes an ImageNet-trained MiT for 160k iterations): 1e-3,
# weight decay 0.03 as in the recipe.
_base_ = '../mmseg/segformer_mit-b0_8xb2-lion-160k_ade20k-512x512.py'

crop_size = (128, 128)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=None, drop_path_rate=0.0),
    decode_head=dict(num_classes=4, channels=128))

metainfo = dict(classes=('background', 'circle', 'square', 'triangle'),
                palette=[[0, 0, 0], [220, 60, 60], [60, 200, 60], [70, 90, 230]])
data_root = 'data/shapes/'
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(_delete_=True, type='BaseSegDataset', data_root=data_root,
                 metainfo=metainfo, img_suffix='.png', seg_map_suffix='.png',
                 data_prefix=dict(img_path='train', seg_map_path='train_masks'),
                 pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                           dict(type='RandomFlip', prob=0.5), dict(type='PackSegInputs')]))
val_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='BaseSegDataset', data_root=data_root,
                 metainfo=metainfo, img_suffix='.png', seg_map_suffix='.png',
                 data_prefix=dict(img_path='val', seg_map_path='val_masks'),
                 pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                           dict(type='PackSegInputs')]))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

max_iters = 400
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=40),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=40, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=20),
                     checkpoint=dict(interval=200, max_keep_ckpts=1))
randomness = dict(seed=0)

# The lr is for a total batch of 8; --auto-scale-lr scales it to the effective
# batch (GPUs x batch x accumulative_counts) by Lion's rule (mmlion.engine.lr_scaling).
auto_scale_lr = dict(enable=False, base_batch_size=8)
