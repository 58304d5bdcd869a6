"""Bad input to mmlion.engine: a file mmlion did not write where a checkpoint goes (see
tests/bad_input.py)."""
from bad_input import Case, bad_input_test
from mmlion.engine import AtomicLocalBackend

def _foreign_checkpoint(ctx):
    work_dir = ctx.tmp / 'work_dir'
    work_dir.mkdir()
    (work_dir / 'epoch_1.pth').write_bytes(b'a checkpoint of another run')
    return ctx.watch(work_dir / 'epoch_1.pth')


def _save_over(ctx, path):
    AtomicLocalBackend().put(b'mmlion checkpoint', path)


CASES = [
    Case('foreign-checkpoint-in-work-dir', _save_over, FileExistsError,
         ('epoch_1.pth', 'did not write it'), setup=_foreign_checkpoint,
         input='a checkpoint mmlion did not write, where it saves one',
         where="`ResumableCheckpointHook`'s writer, before any write"),
]


test_bad_input = bad_input_test(CASES)
