# The main job's recipe under MMEngine's FlexibleRunner with DeepSpeed ZeRO-2: two
# processes (`tools/dist_train.sh CONFIG 2`), each holding half of Lion's state and of
# the gradients. mmlion's tools/train.py builds 'DeepSpeedStrategy' as
# mmlion.DeepSpeedStrategy (docs/scaling_out.md). deepspeed clips and accumulates
# itself: the recipe's clip_grad (max_norm 10) becomes gradient_clipping, stated here
# because deepspeed would otherwise clip at 1.0. 2 x 8 images keep the total batch of
# 16, so lr and weight decay stay.
_base_ = './rtmdet_tiny_1xb16-lion-24e_shapes.py'
base_optimizer = {{_base_.optim_wrapper.optimizer}}  # the main job's lr, betas, decay

runner_type = 'FlexibleRunner'
strategy = dict(type='DeepSpeedStrategy', zero_optimization=dict(stage=2),
                gradient_clipping=10.0, train_micro_batch_size_per_gpu=8)
optim_wrapper = dict(
    _delete_=True,
    type='DeepSpeedOptimWrapper',
    optimizer=base_optimizer,
    paramwise_cfg=dict(
        norm_decay_mult=0, bias_decay_mult=0, flat_decay_mult=0, bypass_duplicate=True))
train_dataloader = dict(batch_size=8)
