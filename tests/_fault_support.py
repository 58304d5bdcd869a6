"""What the fault-tolerance tests load with custom_imports: a small model and
dataset that draw from every RNG (python, numpy, torch: augmentation noise and
dropout), a metric, and hooks that kill the process or poison a gradient at a
chosen iteration. Everything else in those runs is MMEngine's real Runner."""
import os
import os.path as osp
import random
import signal

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, HOOKS, METRICS, MODELS
from torch.utils.data import Dataset


@DATASETS.register_module(force=True)
class NoisyToyDataset(Dataset):
    """Fixed points of 4 classes; each read adds noise from all three RNGs."""

    def __init__(self, size=20, dim=16, augment=True):
        g = torch.Generator().manual_seed(1234)
        self.x = torch.randn(size, dim, generator=g)
        self.y = torch.randint(0, 4, (size,), generator=g)
        self.augment = augment

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        x = self.x[index].clone()
        if self.augment:
            x += 0.1 * torch.randn_like(x)
            x *= float(np.random.uniform(0.9, 1.1))
            if random.random() < 0.5:
                x = -x
        return dict(inputs=x, target=self.y[index])


@MODELS.register_module(force=True)
class NoisyToyModel(BaseModel):

    def __init__(self, dim=16, hidden=32, extra_layer=False):
        super().__init__()
        # extra_layer: the same model with one more layer, for a resume that cannot fit
        self.fc0 = torch.nn.Linear(dim, dim) if extra_layer else torch.nn.Identity()
        self.fc1 = torch.nn.Linear(dim, hidden)
        self.bn = torch.nn.BatchNorm1d(hidden)
        self.drop = torch.nn.Dropout(0.2)
        self.fc2 = torch.nn.Linear(hidden, 4)
        self.poison = False  # set by PoisonGradHook: the next loss is NaN

    def forward(self, inputs, target, mode='tensor'):
        logits = self.fc2(self.drop(F.relu(self.bn(self.fc1(self.fc0(inputs))))))
        if mode == 'loss':
            loss = F.cross_entropy(logits, target)
            if self.poison:
                self.poison = False
                loss = loss * float('nan')
            return dict(loss=loss)
        if mode == 'predict':
            return [dict(pred=p, target=t) for p, t in zip(logits.argmax(1), target)]
        return logits


@METRICS.register_module(force=True)
class ToyAccuracy(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results.extend(float(s['pred'] == s['target']) for s in data_samples)

    def compute_metrics(self, results):
        return dict(accuracy=sum(results) / max(len(results), 1))


@HOOKS.register_module(force=True)
class KillAtIterHook(Hook):
    """SIGKILL this process after training iteration ``kill_iter`` (1-based): on
    every rank, or on ``rank`` alone; with ``first_attempt_only``, not again after
    torchrun has restarted the workers."""

    def __init__(self, kill_iter, rank=None, first_attempt_only=False):
        self.kill_iter = kill_iter
        self.rank = rank
        self.first_attempt_only = first_attempt_only

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 != self.kill_iter:
            return
        if self.rank is not None and runner.rank != self.rank:
            return
        if self.first_attempt_only and os.environ.get('TORCHELASTIC_RESTART_COUNT', '0') != '0':
            return
        os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module(force=True)
class PoisonGradHook(Hook):
    """Make the loss (and so every gradient) of iteration ``poison_iter`` NaN, and
    save the parameters and optimizer state before and after that iteration."""

    priority = 'VERY_LOW'

    def __init__(self, poison_iter):
        self.poison_iter = poison_iter

    def _dump(self, runner, tag):
        model = getattr(runner.model, 'module', runner.model)
        torch.save(dict(params={n: p.detach().clone() for n, p in model.named_parameters()},
                        optimizer=runner.optim_wrapper.state_dict()),
                   osp.join(runner.work_dir, f'{tag}.pth'))

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.poison_iter:
            getattr(runner.model, 'module', runner.model).poison = True
            self._dump(runner, 'before_poison')

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.poison_iter:
            self._dump(runner, 'after_poison')
