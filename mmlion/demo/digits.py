"""The UCI handwritten digits as scikit-learn ships them (``sklearn.datasets.load_digits``:
1797 8x8 images, 10 classes, 16 grey levels), an MLP for them, and an accuracy metric.

The split is fixed (a seeded permutation, stratified by class: 1437 train, 360 val),
so every optimizer and seed sees the same data.
"""
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from torch.utils.data import Dataset

from mmlion.registry import DATASETS, METRICS, MODELS

VAL_PER_CLASS = 36


def _split():
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = digits.data.astype(np.float32) / 16.0
    y = digits.target.astype(np.int64)
    rng = np.random.RandomState(0)
    val = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:VAL_PER_CLASS]
                          for c in range(10)])
    train = np.setdiff1d(np.arange(len(y)), val)
    return x, y, np.sort(train), np.sort(val)


@DATASETS.register_module()
class DigitsDataset(Dataset):
    """``split='train'`` (1437 images) or ``'val'`` (360, 36 per class)."""

    def __init__(self, split: str = 'train'):
        if split not in ('train', 'val'):
            raise ValueError(f"Invalid split: split={split!r} (must be 'train' or 'val')")
        x, y, train, val = _split()
        index = train if split == 'train' else val
        self.x = torch.from_numpy(x[index])
        self.y = torch.from_numpy(y[index])
        self.metainfo = dict(classes=tuple(str(c) for c in range(10)), split=split)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], labels=self.y[i])


@MODELS.register_module()
class DigitsMLP(BaseModel):
    """64 -> hidden -> hidden -> 10, ReLU."""

    def __init__(self, hidden: int = 128):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(64, hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, 10))

    def forward(self, inputs, labels=None, mode='tensor'):
        logits = self.net(inputs)
        if mode == 'loss':
            return dict(loss=F.cross_entropy(logits, labels))
        if mode == 'predict':
            loss = F.cross_entropy(logits, labels, reduction='none')
            return [dict(correct=bool(p == t), loss=float(l.detach()))
                    for p, t, l in zip(logits.argmax(1), labels, loss)]
        return logits


@METRICS.register_module()
class DigitsAccuracy(BaseMetric):
    """Top-1 accuracy and mean cross-entropy on the val split."""

    default_prefix = 'val'

    def process(self, data_batch, data_samples):
        self.results.extend((s['correct'], s['loss']) for s in data_samples)

    def compute_metrics(self, results):
        return dict(accuracy=sum(c for c, _ in results) / len(results),
                    loss=sum(l for _, l in results) / len(results))
