"""What mmlion's command-line tools (``tools/train.py``, ``tools/test.py``,
``tools/dist_train.sh``) run before a Runner is built: the config check that names a
wrong key or value in a second (:mod:`.config_check`, with the unknown keys of
:mod:`.key_check` and the loop and schedulers of :mod:`.loop_check`), one run per work
dir (:mod:`.work_dir_lock`), and the distributed set-up for torchrun on any machine
(:mod:`.dist`). This is the top layer: it may import
everything in mmlion, and nothing in the library imports it.

Build a Runner in Python? Call :func:`check_config` and :func:`add_config_check_hook`
on the config first.
"""
from .config_check import ConfigError, add_config_check_hook, check_checkpoint, check_config
from .dist import setup_distributed, teardown_distributed, torchrun_restart
from .work_dir_lock import hold_work_dir

__all__ = ['ConfigError', 'add_config_check_hook', 'check_checkpoint', 'check_config',
           'hold_work_dir', 'setup_distributed', 'teardown_distributed', 'torchrun_restart']
