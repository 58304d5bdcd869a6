# The main job: RTMDet-tiny trained from scratch with Lion on the Shapes dataset that
# mmlion generates (128x128, 3 classes), on one CPU process, and scored by
# MMDetection's CocoMetric. `bash tools/run_main.sh` runs it.
#
# lr and weight decay follow the AdamW twin (rtmdet_tiny_1xb16-adamw-24e_shapes.py,
# lr 4e-3, wd 0.05) by the small-batch rule the Shapes evidence picked
# (docs/evidence.md: three seeds at batch 16, 0.913 +- 0.016 bbox mAP against 0.861 +-
# 0.048 for the paper's ratio 10): lr / 3, wd x 3 (lr * wd unchanged), betas (0.95, 0.98)
# from the base schedule. It is what tools/misc/adamw_to_lion.py writes at this batch.
_base_ = [
    '../../_base_/models/rtmdet-tiny_bn.py',
    '../../_base_/datasets/shapes_detection.py',
    '../../_base_/schedules/lion_warmup-cosine.py',
    'mmdet::_base_/default_runtime.py',
]

model = dict(bbox_head=dict(num_classes=3))

max_epochs = 24
base_lr = 0.00133333  # 4e-3 / 3
train_cfg = dict(max_epochs=max_epochs, val_interval=8)
optim_wrapper = dict(optimizer=dict(lr=base_lr, weight_decay=0.15))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=100),
    dict(
        type='CosineAnnealingLR',
        eta_min=base_lr * 0.05,
        begin=0,
        end=max_epochs,
        T_max=max_epochs,
        by_epoch=True,
        convert_to_iter_based=True)
]
# The lr above is for a total batch of 16; `--auto-scale-lr` scales it to the effective
# batch by Lion's rule (mmlion.engine.lr_scaling).
auto_scale_lr = dict(base_batch_size=16)

# mmlion's CheckpointHook: checkpoints carry RNG states and any half-accumulated
# gradient, so `--resume` continues bit for bit, and they are written atomically.
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='mmlion.ResumableCheckpointHook', interval=8, max_keep_ckpts=2,
                    save_best='coco/bbox_mAP', rule='greater'))
log_processor = dict(window_size=10)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
