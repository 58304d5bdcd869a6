"""MMEngine's checkpoints load under torch.load's safe default once mmlion is
imported, and the safety still refuses what it should."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import mmlion  # noqa: F401  (registers the allowed globals)
from mmlion.utils import versions
from mmlion.utils.checkpoint import load_checkpoint_file, mmengine_loads_safely

# torch.serialization.add_safe_globals (the allow-list) is torch 2.4+; before it, torch.load
# defaults to weights_only=False and reads MMEngine's checkpoints with nothing to allow.
SAFE_LOAD_UNSUPPORTED = versions.unsupported(
    "torch.load's allow-list (add_safe_globals)", 'torch', versions.torch_version(),
    versions.SUPPORTED['safe_globals_torch'])
if not SAFE_LOAD_UNSUPPORTED and mmengine_loads_safely():
    SAFE_LOAD_UNSUPPORTED = ('this MMEngine loads its checkpoints safely itself (the OneDL '
                             'fork), and mmlion registers nothing with torch')


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


def _message_hub_checkpoint(path):
    hub = MessageHub.get_instance('mmlion-test-checkpoint-2')
    hub.update_scalar('train/loss', 1.0)
    torch.save(dict(message_hub=hub.state_dict(), state_dict={'w': torch.ones(2)}), path)


def test_checkpoints_load_as_the_installed_mmengine_loads_them(tmp_path):
    """Upstream MMEngine: through the allow-list mmlion registers. The OneDL fork:
    through its own loader, with nothing of mmlion's in torch's allow-list."""
    path = tmp_path / 'ckpt.pth'
    _message_hub_checkpoint(path)
    loaded = load_checkpoint_file(str(path))
    assert isinstance(loaded['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    get_safe = getattr(torch.serialization, 'get_safe_globals', None)
    if mmengine_loads_safely() and get_safe is not None:
        names = [getattr(g[0] if isinstance(g, tuple) else g, '__module__', '')
                 for g in get_safe()]
        assert not any(name.startswith('mmlion') for name in names)
