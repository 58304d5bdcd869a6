# The main job's recipe under MMEngine's FlexibleRunner with FSDP: two processes
# (`tools/dist_train.sh CONFIG 2`), each holding half of the parameters, gradients and
# Lion state. mmlion's tools/train.py builds 'FSDPStrategy' as mmlion.FSDPStrategy
# (docs/scaling_out.md: CPU support, clipping over all shards, resume on current
# torch). 2 x 8 images keep the total batch of 16, so lr and weight decay stay.
_base_ = './rtmdet_tiny_1xb16-lion-24e_shapes.py'

runner_type = 'FlexibleRunner'
strategy = dict(type='FSDPStrategy', state_dict_cfg='full',
                model_wrapper=dict(use_orig_params=True))
train_dataloader = dict(batch_size=8)
# MMEngine's plain OptimWrapper: the non-finite guard is tested under DDP and ZeRO, not
# with FSDP's sharded gradients (docs/fault_tolerance.md).
optim_wrapper = dict(type='OptimWrapper')
