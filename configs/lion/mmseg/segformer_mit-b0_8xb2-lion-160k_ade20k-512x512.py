# mmsegmentation's SegFormer MiT-B0 ADE20K recipe with Lion in place of AdamW. AdamW
# there: lr 6e-5, weight decay 0.01, betas (0.9, 0.999), at a total batch of 16. At so
# small a batch the paper's advice is the mild end of its rule (tools/misc/adamw_to_lion.py
# warns below 64): ratio 3, so Lion lr 2e-5, weight decay 0.03 (lr * wd = 6e-7, as
# upstream), with the stable betas (0.95, 0.98). mmseg's rules stay: no decay for
# pos_block and norms, 10x lr for the decode head; linear warmup for 1500 iterations,
# then poly decay to 0 at 160k iterations (IterBasedTrainLoop).
_base_ = 'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py'

custom_imports = dict(imports=['mmlion'], allow_failed_imports=False)

optim_wrapper = dict(
    type='mmlion.GuardedOptimWrapper',  # stops a run that goes NaN/Inf
    optimizer=dict(_delete_=True, type='Lion', lr=2e-5, betas=(0.95, 0.98),
                   weight_decay=0.03),
    # No decay for norm layers (by type, whatever their names: MiT's stage-end
    # LayerNorms are `layers.N.2`) and biases, beside upstream's custom_keys. Upstream's
    # 'head' key (10x lr) takes precedence over both for the decode head, so its
    # BatchNorms (the only modules named `bn`) and its classifier bias get keys of their
    # own, longer, which MMEngine tries first.
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0, custom_keys={
        '.bn.': dict(lr_mult=10.0, decay_mult=0.0),
        'conv_seg.bias': dict(lr_mult=10.0, decay_mult=0.0)}))

# Bitwise resume by iteration, atomic checkpoints (mmseg saves every 16k iterations).
default_hooks = dict(checkpoint=dict(type='mmlion.ResumableCheckpointHook', by_epoch=False,
                                     interval=16000))

# The lr is for a total batch of 16; --auto-scale-lr scales it to the effective
# batch (GPUs x batch x accumulative_counts) by Lion's rule (mmlion.engine.lr_scaling).
auto_scale_lr = dict(enable=False, base_batch_size=16)
