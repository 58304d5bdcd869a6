# mmpretrain's ViT-B/16 ImageNet-1k recipe (the paper's headline model) with Lion in
# place of AdamW. AdamW there: lr 3e-3, weight decay 0.3 at a total batch of 4096.
# Lion, by the paper's rule (lr 3-10x smaller, weight decay as much larger, lr * wd
# kept): lr 3e-4, weight decay 3.0 (lr * wd = 9e-4, as upstream). google/automl's own
# ViT-B/16 pair is AdamW 1e-3 / 1.0 -> Lion 1e-4 / 10, the same ratio. Lion's default
# betas (0.9, 0.99), as the paper trains ViT. Everything else is mmpretrain's: no decay
# for cls_token and pos_embed, clip_grad 1.0, 30 epochs of linear warmup by iteration,
# then cosine to epoch 300, auto_scale_lr from a batch of 4096.
_base_ = 'mmpretrain::vision_transformer/vit-base-p16_64xb64_in1k.py'

custom_imports = dict(imports=['mmlion'], allow_failed_imports=False)

optim_wrapper = dict(
    type='mmlion.GuardedOptimWrapper',  # stops a run that goes NaN/Inf
    optimizer=dict(_delete_=True, type='Lion', lr=3e-4, betas=(0.9, 0.99), weight_decay=3.0),
    # No decay for norm layers (by type, whatever their names) and biases, beside
    # upstream's custom_keys.
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))

# Checkpoints that resume bit for bit (RNG states, partial accumulation), written
# atomically: mmlion.engine.ResumableCheckpointHook.
default_hooks = dict(checkpoint=dict(type='mmlion.ResumableCheckpointHook'))
