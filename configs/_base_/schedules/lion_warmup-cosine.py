# Lion with a linear warmup by iteration, then cosine decay by epoch (converted to
# iterations), paramwise no-decay for norm, bias and other 1-D parameters, and
# gradient clipping. mmlion.GuardedOptimWrapper is MMEngine's OptimWrapper that skips a
# step whose gradients hold NaN or Inf and stops the run after 10 in a row (a run that
# diverged then ends with an error, not with a saved checkpoint of NaN weights); with
# clip_grad it reads the norm clipping computes anyway, so it costs nothing.
#
# Relation to the AdamW recipe it replaces (AdamW lr=4e-3, weight_decay=0.05, the
# RTMDet/DINO family): the paper's rule is lr 3-10x smaller and weight decay 3-10x
# larger, keeping lr * wd about equal. Here: lr 4e-3 / 10 = 4e-4, weight decay
# 0.05 * 10 = 0.5 (lr * wd = 2e-4 in both), and betas (0.95, 0.98), which the
# authors suggest for stability. eta_min follows lr (x 0.05, as RTMDet's AdamW).
custom_imports = dict(imports=['mmlion'], allow_failed_imports=False)

max_epochs = 12
base_lr = 4e-4
warmup_iters = 500

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='mmlion.GuardedOptimWrapper',  # max_consecutive_skips=10 by default
    optimizer=dict(type='Lion', lr=base_lr, betas=(0.95, 0.98), weight_decay=0.5),
    paramwise_cfg=dict(
        norm_decay_mult=0, bias_decay_mult=0, flat_decay_mult=0, bypass_duplicate=True),
    clip_grad=dict(max_norm=10, norm_type=2))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(
        type='CosineAnnealingLR',
        eta_min=base_lr * 0.05,
        begin=0,
        end=max_epochs,
        T_max=max_epochs,
        by_epoch=True,
        convert_to_iter_based=True)
]

# The lr above is for a total batch of 256 (8 GPUs x 32); `--auto-scale-lr` scales
# it to the batch actually used (GPUs x batch x accumulative_counts) by Lion's rule
# (mmlion.engine.lr_scaling).
auto_scale_lr = dict(enable=False, base_batch_size=256)
