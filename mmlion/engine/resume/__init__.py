"""What a bitwise-exact resume needs, one concern per module, composed by
:class:`~mmlion.engine.hooks.ResumableCheckpointHook`:

* :mod:`.rng`: every rank's RNG states, recorded where training leaves them and
  restored before the next batch is loaded;
* :mod:`.partial_gradients`: the gradient of an unfinished accumulation window;
* :mod:`.sharded_optimizers`: ZeRO's optimizer state gathered on every rank before
  rank 0 saves it;
* :mod:`.resumed_data`: an iteration-based run picking its data up without replaying it;
* :mod:`.atomic_saving`: MMEngine's checkpoint saving, reordered so that a crash leaves
  a complete checkpoint that ``last_checkpoint`` names, replacing and deleting only
  what mmlion wrote.
"""
