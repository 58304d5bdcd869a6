"""mmlion.engine.resume.rng: RNG states recorded and restored."""
import random

import numpy as np
import torch

from mmlion.engine.resume.rng import RngStream, get_rng_state, set_rng_state


def test_rng_states_round_trip():
    state = get_rng_state()
    draws = (random.random(), np.random.rand(), torch.rand(1))
    set_rng_state(state)
    assert draws == (random.random(), np.random.rand(), torch.rand(1))


def test_the_stream_restores_once_what_it_set_aside():
    stream = RngStream()
    stream.record(restore_next=True)
    expected = torch.rand(3)
    torch.rand(5)  # validation draws
    stream.restore_pending()
    assert torch.equal(torch.rand(3), expected)
    torch.rand(1)
    stream.restore_pending()  # nothing pending any more: no second restore
    assert not torch.equal(torch.rand(3), expected)
    stream.return_to_snapshot()  # back to where training left the RNGs
    assert torch.equal(torch.rand(3), expected)
