# mmsegmentation's UperNet with a Swin-T backbone (ImageNet-1k pre-trained) on ADE20K
# with Lion in place of AdamW. AdamW there: lr 6e-5, weight decay 0.01, at a total
# batch of 16. As for SegFormer (the same small batch): ratio 3, Lion lr 2e-5, weight
# decay 0.03 (lr * wd = 6e-7, as upstream), betas (0.95, 0.98). mmseg's rules stay: no
# decay for the position embedding, the relative position bias tables and norms; 1500
# iterations of warmup, then poly decay over 160k iterations (IterBasedTrainLoop).
_base_ = 'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py'

custom_imports = dict(imports=['mmlion'], allow_failed_imports=False)

optim_wrapper = dict(
    type='mmlion.GuardedOptimWrapper',  # stops a run that goes NaN/Inf
    optimizer=dict(_delete_=True, type='Lion', lr=2e-5, betas=(0.95, 0.98),
                   weight_decay=0.03),
    # No decay for norm layers (by type, whatever their names) and biases, beside
    # upstream's custom_keys.
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))

default_hooks = dict(checkpoint=dict(type='mmlion.ResumableCheckpointHook', by_epoch=False,
                                     interval=16000))

# The lr is for a total batch of 16; --auto-scale-lr scales it to the effective
# batch (GPUs x batch x accumulative_counts) by Lion's rule (mmlion.engine.lr_scaling).
auto_scale_lr = dict(enable=False, base_batch_size=16)
