"""may_save_now: every checkpoint MMEngine's own CheckpointHook saves, in a real Runner,
was foreseen at that moment, for epoch and iteration checkpoints, save_begin, save_last
and save_best."""
import pytest
from mmengine.hooks import Hook

from helpers import toy_runner
from mmlion.engine.resume.checkpoint_moments import may_save_now


class Witness(Hook):
    """Records the moments may_save_now said yes (as a BeforeEachCheckpoint does) and
    the moments a checkpoint was saved."""
    priority = 80

    def __init__(self):
        self.foreseen, self.saved = set(), []

    def _ask(self, runner, event):
        if may_save_now(runner, event):
            self.foreseen.add((runner.epoch, runner.iter))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._ask(runner, 'train_iter')

    def after_train_epoch(self, runner):
        self._ask(runner, 'train_epoch')

    def after_val_epoch(self, runner, metrics=None):
        self._ask(runner, 'val_epoch')

    def before_save_checkpoint(self, runner, checkpoint):
        self.saved.append((runner.epoch, runner.iter))


@pytest.mark.slow  # six real trainings
@pytest.mark.parametrize('checkpoint', [
    dict(interval=1),
    dict(interval=2, save_begin=1, save_last=True),
    dict(interval=2, save_last=False),
    dict(by_epoch=False, interval=3),
    dict(by_epoch=False, interval=4, save_begin=2, save_last=True),
    dict(interval=100, save_best='accuracy', rule='greater'),
], ids=str)
def test_every_checkpoint_the_hook_saves_was_foreseen(tmp_path, checkpoint):
    options = {f'default_hooks.checkpoint.{k}': v for k, v in checkpoint.items()}
    runner = toy_runner(tmp_path / 'run', **{
        'default_hooks.checkpoint.type': 'CheckpointHook', 'train_cfg.max_epochs': 3,
        'train_cfg.val_interval': 1, **options})
    witness = Witness()
    runner.register_hook(witness)
    runner.train()
    assert witness.saved, 'the config saves at least one checkpoint'
    assert set(witness.saved) <= witness.foreseen
