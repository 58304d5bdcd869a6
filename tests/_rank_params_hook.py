"""A hook the distributed tests load with custom_imports: at the end of training each
rank writes its parameters, so the test can compare the replicas."""
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module(force=True)
class SaveRankParamsHook(Hook):

    def after_train(self, runner) -> None:
        model = getattr(runner.model, 'module', runner.model)
        params = {n: p.detach().clone() for n, p in model.named_parameters()}
        torch.save(params, osp.join(runner.work_dir, f'params_rank{get_rank()}.pth'))
