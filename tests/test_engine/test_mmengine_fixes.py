"""mmlion.engine.mmengine_fixes: every workaround checks that its bug is in the
installed code and stands aside where it is not; the safe-load allow-list admits
MMEngine's checkpoints and nothing more."""
import contextlib
import importlib.metadata
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import mmlion  # noqa: F401  (applies the fixes at import)
from mmlion.engine import mmengine_fixes
from mmlion.engine.resume.atomic_saving import AtomicCheckpointSaving
from mmlion.utils import versions
from mmlion.utils.checkpoint import mmengine_loads_safely

# torch.serialization.add_safe_globals (the allow-list) is torch 2.4+; before it, torch.load
# defaults to weights_only=False and reads MMEngine's checkpoints with nothing to allow.
SAFE_LOAD_UNSUPPORTED = versions.unsupported(
    "torch.load's allow-list (add_safe_globals)", 'torch', versions.torch_version(),
    versions.SUPPORTED['safe_globals_torch'])
if not SAFE_LOAD_UNSUPPORTED and mmengine_loads_safely():
    SAFE_LOAD_UNSUPPORTED = ('this MMEngine loads its checkpoints safely itself (the OneDL '
                             'fork), and mmlion registers nothing with torch')



@pytest.fixture
def fresh_verdicts():
    mmengine_fixes.needed.cache_clear()
    yield
    mmengine_fixes.needed.cache_clear()


def _installed_mmengine():
    for distribution in ('onedl-mmengine', 'mmengine'):
        try:
            return distribution, importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None, None


# The bugs each MMEngine these stacks install has, by reading its code: the checks must
# find them there (one that stops finding a bug it was written for is wrong, not a fix).
BUGS_IN = {
    ('mmengine', '0.10.7'): ['checkpoint_order', 'resume_replays_data', 'lr_scaling',
                             'fsdp_clip_local_shards', 'deepspeed_callbacks'],
    ('onedl-mmengine', '0.10.12'): ['lr_scaling', 'deepspeed_callbacks'],
}


def test_the_checks_find_the_bugs_in_the_mmengine_they_were_written_for(fresh_verdicts):
    installed = _installed_mmengine()
    if installed not in BUGS_IN:
        pytest.skip(f'{installed}: no record of its bugs here')
    for name in BUGS_IN[installed]:
        assert mmengine_fixes.needed(name), f'{name} not found in {installed}'
        assert mmengine_fixes.WORKAROUNDS[name].found_in.find(installed[1]) >= 0, name
    verdicts = dict(line.split(': ', 1) for line in mmengine_fixes.report())
    assert all(verdicts[name].startswith('applied') for name in BUGS_IN[installed])


@pytest.mark.parametrize('name', ['checkpoint_order', 'fsdp_argument_order',
                                  'fsdp_clip_local_shards', 'resume_replays_data',
                                  'deepspeed_callbacks', 'lr_scaling'])
def test_code_that_cannot_be_read_or_has_changed_means_the_bug_is_assumed(
        monkeypatch, fresh_verdicts, name):
    """A check never raises on MMEngine's code: unreadable (a compiled build) or
    rewritten past its patterns, it assumes the bug (the workaround is safe either
    way)."""
    monkeypatch.setattr(mmengine_fixes, '_source', lambda obj: '')
    assert mmengine_fixes.needed(name)
    mmengine_fixes.needed.cache_clear()
    monkeypatch.setattr(mmengine_fixes, '_source', lambda obj: 'def rewritten(): ...')
    verdict = mmengine_fixes.needed(name)  # never raises (checkpoint_order did)
    assert verdict or name != 'checkpoint_order'  # the save call is not found: assumed


@pytest.mark.parametrize('taken', [False, True])
def test_lion_name_verdict_decides_the_one_message(monkeypatch, fresh_verdicts, taken):
    """The displacement message follows the 'lion_name' verdict (computed before mmlion
    takes the name), not a second check of its own."""
    import mmengine.logging
    said = []
    monkeypatch.setattr(mmengine.logging, 'print_log', lambda msg, **kw: said.append(msg))
    monkeypatch.setitem(mmengine_fixes.WORKAROUNDS, 'lion_name',
                        mmengine_fixes.Workaround('test', 'test', lambda: taken))
    mmengine_fixes._register_lion()
    assert len(said) == int(taken) and all('it now builds mmlion.optim.Lion' in m
                                           for m in said)


@pytest.mark.parametrize('name, fixed_source', [
    ('checkpoint_order', "runner.save_checkpoint(...)\nwrite_atomically(pointer)\n"
                         "self.file_backend.remove(outdated)"),
    ('fsdp_argument_order', 'FSDP.optim_state_dict_to_load(self.model, optim, state_dict)'),
    ('fsdp_clip_local_shards', 'self.model.clip_grad_norm_(max_norm)'),
    ('resume_replays_data', 'self.dataloader_iterator = skip(self._iter)'),
    ('deepspeed_callbacks', 'callback(extra_ckpt)'),
])
def test_a_fixed_mmengine_makes_the_workaround_stand_aside(monkeypatch, fresh_verdicts, name,
                                                           fixed_source):
    """The checks read the installed MMEngine's code; given code without the bug, each
    says so."""
    monkeypatch.setattr(mmengine_fixes, '_source', lambda obj: fixed_source)
    assert not mmengine_fixes.needed(name)


def test_standing_aside_runs_mmengines_own_code(monkeypatch, fresh_verdicts):
    monkeypatch.setattr(mmengine_fixes, '_source', lambda obj: (
        'runner.save_checkpoint(...)\nwrite_atomically(pointer)\n'
        'self.file_backend.remove(outdated)\nFSDP.optim_state_dict_to_load(model, optim, sd)'))
    assert isinstance(mmengine_fixes.fsdp_old_argument_order(), contextlib.nullcontext)

    class Hook(AtomicCheckpointSaving):
        _atomic = True

    runner = object()
    with Hook()._saving(runner) as seen:
        assert seen is runner  # no scratch pointer, no deferred deletions


class GetattrPayload:
    """Pickles as getattr(HistoryBuffer, '__init__'): not a statistics method."""

    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


@pytest.mark.skipif(bool(SAFE_LOAD_UNSUPPORTED), reason=str(SAFE_LOAD_UNSUPPORTED))
def test_message_hub_and_numpy_load_with_weights_only(tmp_path):
    hub = MessageHub.get_instance('mmlion-test-checkpoint')
    for value in (3.0, 2.0, 1.0):
        hub.update_scalar('train/loss', value)
    hub.update_info('epoch_array', np.arange(3, dtype=np.float64))
    path = tmp_path / 'ckpt.pth'
    torch.save(dict(message_hub=hub.state_dict(), state_dict={'w': torch.ones(2)},
                    meta=dict(seed=np.int64(7), ratio=np.float32(0.5))), path)
    loaded = torch.load(path, weights_only=True)  # torch's default since 2.6
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert buffer.mean() == pytest.approx(2.0) and buffer.min() == 1.0
    assert loaded['meta']['seed'] == 7
    np.testing.assert_array_equal(loaded['message_hub']['runtime_info']['epoch_array'],
                                  np.arange(3.0))


@pytest.mark.skipif(bool(SAFE_LOAD_UNSUPPORTED), reason=str(SAFE_LOAD_UNSUPPORTED))
def test_other_getattr_calls_are_still_refused(tmp_path):
    path = tmp_path / 'payload.pth'
    torch.save({'x': GetattrPayload()}, path)
    with pytest.raises(pickle.UnpicklingError, match="refusing getattr"):
        torch.load(path, weights_only=True)
    assert torch.load(path, weights_only=False)['x'] is HistoryBuffer.__init__
