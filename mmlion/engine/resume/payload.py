"""Where mmlion's resume hooks keep their part of a checkpoint: one entry,
``checkpoint['mmlion_resume']``, holding each hook's value from every rank and the
number of ranks that saved them. Each hook writes and reads its own key of it
(``'rng'``, ``'grads'``), the keys the single hook of earlier releases wrote, so its
checkpoints resume alike.

Rank 0 alone writes a checkpoint (MMEngine's ``Runner.save_checkpoint`` is
``master_only``), so every rank's value is gathered before, at the moment the
checkpoint hook may save (:mod:`.checkpoint_moments`), and written by rank 0 in
``before_save_checkpoint`` if it was gathered for that very moment."""
from typing import Any, Callable, Optional

from mmengine.dist import all_gather_object, get_rank, get_world_size

__all__ = ['KEY', 'RankPayload']

KEY = 'mmlion_resume'


def _moment(runner) -> tuple:
    return runner.epoch, runner.iter


class RankPayload:
    """One hook's per-rank value in the checkpoints, under ``name``."""

    def __init__(self, name: str, hook: str):
        self.name, self.hook = name, hook
        self._gathered: Optional[tuple] = None  # (moment, every rank's value)

    def gather(self, runner, mine: Any) -> None:
        """Every rank's ``mine``, kept for the checkpoint saved at this moment. A
        collective: every rank calls it."""
        everyone = all_gather_object(mine) if get_world_size() > 1 else [mine]
        self._gathered = (_moment(runner), everyone)

    def add_to(self, runner, checkpoint: dict, mine: Callable[[], Any]) -> None:
        """Put what was gathered for this moment into ``checkpoint``. A checkpoint saved
        at another moment (outside the checkpoint hook's rule) gets ``mine()`` in a
        single process, and goes without (logged) under several."""
        if get_world_size() == 1 and (self._gathered is None
                                      or self._gathered[0] != _moment(runner)):
            self.gather(runner, mine())
        if self._gathered is None or self._gathered[0] != _moment(runner):
            runner.logger.warning(
                f'{self.hook}: this checkpoint was saved at a moment the checkpoint '
                f'hook\'s rule did not foresee, so it holds no {self.name}; it resumes '
                f'correctly but not bitwise.')
            return
        payload = checkpoint.setdefault(KEY, dict(version=1, world_size=get_world_size()))
        payload[self.name] = self._gathered[1]

    def this_ranks(self, runner, checkpoint: dict) -> Optional[Any]:
        """This rank's value in a checkpoint being resumed, or None (logged) where there
        is none to use: not a resume (``load_from`` takes the weights only), a
        checkpoint without it, or one saved by another number of ranks."""
        if not getattr(runner, '_resume', False):
            return None
        payload = checkpoint.get(KEY) or {}
        if self.name not in payload:
            runner.logger.info(f'{self.hook}: this checkpoint holds no {self.name}; the '
                               f'resumed run continues correctly but not bitwise like an '
                               f'uninterrupted one.')
            return None
        if payload['world_size'] != get_world_size():
            runner.logger.warning(
                f'{self.hook}: the checkpoint was saved by {payload["world_size"]} processes '
                f'and this run has {get_world_size()}; its {self.name} are not restored.')
            return None
        return payload[self.name][get_rank()]
