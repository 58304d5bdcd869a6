"""ResumableCheckpointHook end to end, with tools/train.py: SIGKILL mid-epoch (and
mid-iteration-based run) and resume bit for bit, on the toy model and on the RTMDet
demo, against MMEngine's CheckpointHook as the control; and a crash while writing a
checkpoint."""
import signal
import textwrap

import pytest

from helpers import (DEMO, assert_bitwise_equal, kill_and_resume, load, train,
                     write_config)

pytestmark = pytest.mark.slow


def test_sigkill_mid_epoch_and_resume_is_bitwise_equal(tmp_path):
    config = write_config(tmp_path, 'toy')
    train(config, tmp_path / 'straight')
    straight = load(tmp_path / 'straight' / 'epoch_3.pth')
    resumed, out = kill_and_resume(tmp_path, config, 'resumed')
    assert 'restored the partial gradient of an accumulation window' in out
    assert_bitwise_equal(straight, resumed, 'single process')
    assert straight['meta']['iter'] == resumed['meta']['iter'] == 15
    # What made it exact is in the checkpoint: RNG states and the partial gradient.
    extra = load(tmp_path / 'resumed' / 'epoch_3.pth')['mmlion_resume']
    assert extra['world_size'] == 1 and set(extra['rng'][0]) >= {'python', 'numpy', 'torch'}

    # The control: MMEngine's own CheckpointHook resumes, but not bitwise.
    plain = write_config(tmp_path, 'plain', checkpoint_hook='CheckpointHook')
    plain_resumed, _ = kill_and_resume(tmp_path, plain, 'plain_resumed')
    with pytest.raises(AssertionError):
        assert_bitwise_equal(straight, plain_resumed)


def test_rtmdet_demo_sigkill_and_resume_is_bitwise_equal(tmp_path, shapes_data):
    """The same with a real MMDetection detector: the demo's RTMDet-tiny on Shapes
    (random flips, BN, CocoMetric validation and save_best every epoch), with
    accumulation windows of 4 over 6-iteration epochs."""
    config = tmp_path / 'rtmdet.py'
    config.write_text(
        f"_base_ = '{DEMO}'\n"
        "custom_imports = dict(imports=['mmlion', '_fault_support'], "
        "allow_failed_imports=False)\n"
        "custom_hooks = []\n"
        "train_dataloader = dict(batch_size=8, dataset=dict(indices=48))\n"
        "val_dataloader = dict(dataset=dict(indices=16))\n"
        "train_cfg = dict(max_epochs=3, val_interval=1)\n"
        "optim_wrapper = dict(accumulative_counts=4)\n"
        "default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3))\n")
    train(str(config), tmp_path / 'straight')
    straight = load(tmp_path / 'straight' / 'epoch_3.pth')
    resumed, out = kill_and_resume(tmp_path, str(config), 'resumed', kill_iter=8,
                                   resumed_at='resumed epoch: 1, iter: 6')
    assert 'restored the partial gradient of an accumulation window' in out
    assert_bitwise_equal(straight, resumed, 'RTMDet-tiny')


# mmseg's way of training: IterBasedTrainLoop over an InfiniteSampler, checkpoints and
# schedules by iteration. 12 iterations, windows of 3, checkpoints at 4 and 8 (both
# inside a window), validation at 5 and 10 (between checkpoints).
ITER_BASED = {
    "sampler=dict(type='DefaultSampler', shuffle=True)":
        "sampler=dict(type='InfiniteSampler', shuffle=True)",
    "train_cfg = dict(by_epoch=True, max_epochs=3, val_interval=1)":
        "train_cfg = dict(type='IterBasedTrainLoop', max_iters=12, val_interval=5)",
    "dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=3, eta_min=1e-5)":
        "dict(type='CosineAnnealingLR', by_epoch=False, begin=4, end=12, eta_min=1e-5)",
    "interval=1, max_keep_ckpts=2)": "interval=4, by_epoch=False, max_keep_ckpts=2)",
    "logger=dict(type='LoggerHook', interval=1)":
        "logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False)",
}


def iteration_based(config, name):
    path = config[:-len('.py')] + f'_{name}.py'
    with open(config) as f:
        text = f.read()
    for old, new in ITER_BASED.items():
        assert old in text, old
        text = text.replace(old, new)
    with open(path, 'w') as f:
        f.write(text)
    return path


COMPANIONS = "[dict(type='mmlion.RngStateHook'), dict(type='mmlion.PartialGradientHook')]"


@pytest.mark.parametrize('checkpoint_hook, custom_hooks', [
    ('mmlion.ResumableCheckpointHook', '[]'),
    ('CheckpointHook', COMPANIONS),  # MMEngine's, with mmlion's one-job hooks beside it
    ('CheckpointHook', '[]')], ids=['resumable', 'mmengine+companions', 'mmengine'])
def test_iteration_based_sigkill_and_resume_is_bitwise_equal(tmp_path, checkpoint_hook,
                                                             custom_hooks):
    """IterBasedTrainLoop, killed at iteration 6 and resumed from the checkpoint at 4
    (inside an accumulation window): mmlion's hooks end bit for bit where the
    uninterrupted run ends, and skip the trained batches without loading them, beside
    mmlion's checkpoint hook or MMEngine's; MMEngine's CheckpointHook alone (the
    control) does not end there."""
    config = iteration_based(write_config(tmp_path, 'toy', checkpoint_hook=checkpoint_hook,
                                          custom_hooks=custom_hooks), 'iter')
    train(config, tmp_path / 'straight')
    straight = load(tmp_path / 'straight' / 'iter_12.pth')
    resumed, out = kill_and_resume(tmp_path, config, 'resumed', kill_iter=6,
                                   resumed_at='resumed epoch: 0, iter: 4',
                                   checkpoints=('iter_4.pth', 'iter_8.pth', 'iter_12.pth'))
    assert straight['meta']['iter'] == resumed['meta']['iter'] == 12
    if custom_hooks == '[]' and checkpoint_hook == 'CheckpointHook':
        with pytest.raises(AssertionError):
            assert_bitwise_equal(straight, resumed)
        return
    assert 'restored the partial gradient of an accumulation window' in out
    assert 'Reach the end of the dataloader' not in out
    assert_bitwise_equal(straight, resumed, 'iteration-based')


# From the end of epoch 1 on, any write that takes a file past 64 KiB kills the
# process with SIGXFSZ (Python ignores that signal; the hook restores its default):
# a crash in the middle of writing the epoch-2 checkpoint, which is ~1 MB.
CRASH_ON_SAVE = textwrap.dedent("""
    import resource
    import signal
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS

    @HOOKS.register_module(force=True)
    class CrashDuringSecondSaveHook(Hook):
        priority = 'LOWEST'  # after the checkpoint hook has written epoch 1
        def after_train_epoch(self, runner):
            if runner.epoch == 0:
                signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
                resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
""")


@pytest.mark.parametrize('hook, survives', [('mmlion.ResumableCheckpointHook', True),
                                            ('CheckpointHook', False)])
def test_crash_while_writing_a_checkpoint(tmp_path, hook, survives):
    (tmp_path / '_crash_on_save.py').write_text(CRASH_ON_SAVE)
    config = write_config(tmp_path, 'crash', checkpoint_hook=hook,
                          custom_hooks="[dict(type='CrashDuringSecondSaveHook')]")
    config_text = open(config).read().replace("'_fault_support']", "'_fault_support', "
                                              "'_crash_on_save']")
    open(config, 'w').write(config_text)
    # The toy model is small; a wide hidden layer makes its checkpoint ~1 MB.
    work_dir = tmp_path / 'crash_run'
    train(config, work_dir, '--cfg-options', 'model.hidden=4096',
          expect_rc=-signal.SIGXFSZ, pythonpath=[str(tmp_path)])
    with open(work_dir / 'last_checkpoint') as f:
        latest = f.read().strip()
    assert latest.endswith('epoch_1.pth')
    assert load(latest)['meta']['epoch'] == 1  # complete, loads
    second = work_dir / 'epoch_2.pth'
    if survives:
        assert not second.exists()  # only a temporary file was cut short
    else:
        # MMEngine's plain write leaves a truncated epoch_2.pth behind.
        assert second.exists()
        with pytest.raises(Exception):
            load(second)
