"""Where mmlion's resume hooks keep their part of a checkpoint: one entry,
``checkpoint['mmlion_resume']``, holding each hook's values from every rank (saved by
rank 0 after a gather) and the number of ranks that saved them. Each hook writes and
reads its own key of it (``'rng'``, ``'grads'``), the keys the single hook of mmlion 0.3
wrote, so its checkpoints resume alike."""
from typing import Any, Optional

from mmengine.dist import all_gather_object, get_rank, get_world_size

__all__ = ['KEY', 'add_from_every_rank', 'this_ranks']

KEY = 'mmlion_resume'


def add_from_every_rank(checkpoint: dict, name: str, mine: Any) -> None:
    """Put every rank's ``mine`` into the checkpoint under ``name``. A collective: every
    rank calls it (``before_save_checkpoint`` runs on every rank)."""
    everyone = all_gather_object(mine) if get_world_size() > 1 else [mine]
    payload = checkpoint.setdefault(KEY, dict(version=1, world_size=get_world_size()))
    payload[name] = everyone


def this_ranks(runner, checkpoint: dict, name: str, hook: str) -> Optional[Any]:
    """This rank's value of ``name`` in a checkpoint being resumed, or None (logged)
    where there is none to use: not a resume (``load_from`` takes the weights only), a
    checkpoint without it, or one saved by another number of ranks."""
    if not getattr(runner, '_resume', False):
        return None
    payload = checkpoint.get(KEY) or {}
    if name not in payload:
        runner.logger.info(f'{hook}: this checkpoint holds no {name}; the resumed run '
                           f'continues correctly but not bitwise like an uninterrupted one.')
        return None
    if payload['world_size'] != get_world_size():
        runner.logger.warning(f'{hook}: the checkpoint was saved by {payload["world_size"]} '
                              f'processes and this run has {get_world_size()}; its {name} '
                              f'are not restored.')
        return None
    return payload[name][get_rank()]
