"""What mmlion's command-line tools (``tools/train.py``, ``tools/test.py``,
``tools/dist_train.sh``) run before a Runner is built: the config check that names a
wrong key and its value in a second (:mod:`.config_check`), and the distributed set-up
for torchrun on any machine (:mod:`.dist`). This is the top layer: it may import
everything in mmlion, and nothing in the library imports it.

Build a Runner in Python? Call :func:`check_config` on the config first.
"""
from .config_check import ConfigError, check_checkpoint, check_config
from .dist import setup_distributed, teardown_distributed, torchrun_restart

__all__ = ['ConfigError', 'check_checkpoint', 'check_config', 'setup_distributed',
           'teardown_distributed', 'torchrun_restart']
