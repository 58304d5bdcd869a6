"""What a bitwise-exact resume needs, one concern per module, each used by the hook of
:mod:`mmlion.engine.hooks` that has that one job:

* :mod:`.rng`: every rank's RNG states, recorded where training leaves them and
  restored before the next batch is loaded (``RngStateHook``);
* :mod:`.resumed_data`: an iteration-based run picking its data up without replaying it
  (``RngStateHook``, which restores the RNGs just before the first new batch);
* :mod:`.partial_gradients`: the gradient of an unfinished accumulation window
  (``PartialGradientHook``);
* :mod:`.checkpoint_moments`: when the checkpoint hook may save, so that every rank
  can hand rank 0 its part first (``RngStateHook``, ``PartialGradientHook``,
  ``ShardedOptimizerHook``);
* :mod:`.payload`: where those hooks keep every rank's values in a checkpoint;
* :mod:`.atomic_saving`: MMEngine's checkpoint saving, reordered so that a crash leaves
  a complete checkpoint that ``last_checkpoint`` names, replacing and deleting only
  what mmlion wrote (``AtomicCheckpointHook``).
"""
