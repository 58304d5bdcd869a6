"""mmlion.utils.checkpoint: a checkpoint loads as the installed MMEngine loads it."""
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import mmlion  # noqa: F401  (registers the allowed globals)
from mmlion.utils.checkpoint import load_checkpoint_file, mmengine_loads_safely

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
