"""mmlion.engine.resume.partial_gradients: an accumulation window's partial gradient."""
import torch
from mmengine.optim import build_optim_wrapper

import mmlion  # noqa: F401  (registers Lion)
from mmlion.engine.resume.partial_gradients import mid_window


def test_mid_window_is_true_between_the_steps_of_an_accumulation_window():
    model = torch.nn.Linear(2, 1)
    wrapper = build_optim_wrapper(model, dict(optimizer=dict(type='Lion'),
                                              accumulative_counts=3))
    wrapper.initialize_count_status(model, 0, 9)
    seen = []
    for _ in range(6):
        wrapper.update_params(model(torch.ones(1, 2)).sum())
        seen.append(mid_window(wrapper))
    assert seen == [True, True, False, True, True, False]
    plain = build_optim_wrapper(model, dict(optimizer=dict(type='Lion')))
    assert not mid_window(plain)
