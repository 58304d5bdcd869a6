# The main job's recipe with ZeRO stage 1: two processes (`tools/dist_train.sh CONFIG 2`),
# each keeping the Lion state of half of the parameters (torch.distributed.optim's
# ZeroRedundancyOptimizer, built from the registry by mmlion). 2 x 8 images keep the
# total batch of 16, so lr and weight decay stay as they are; the parameters equal
# those of DDP with plain Lion bit for bit. mmlion.ResumableCheckpointHook (set in the
# base) gathers the shards on every rank before rank 0 saves a checkpoint; the base's
# mmlion.GuardedOptimWrapper skips non-finite steps on every rank alike, as for any
# optimizer.
_base_ = './rtmdet_tiny_1xb16-lion-24e_shapes.py'

train_dataloader = dict(batch_size=8)
optim_wrapper = dict(
    optimizer=dict(type='mmlion.ZeroRedundancyOptimizer', optimizer_type='Lion'))
