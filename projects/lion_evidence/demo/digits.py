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

from mmengine.registry import DATASETS, METRICS, MODELS

VAL_PER_CLASS = 36


def stratified_split(y: np.ndarray, val_per_class: int):
    """(train, val) indices: ``val_per_class`` of each class held out, by a fixed seed."""
    rng = np.random.RandomState(0)
    val = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:val_per_class]
                          for c in np.unique(y)])
    train = np.setdiff1d(np.arange(len(y)), val)
    return np.sort(train), np.sort(val)


def _split():
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = digits.data.astype(np.float32) / 16.0
    y = digits.target.astype(np.int64)
    return (x, y, *stratified_split(y, VAL_PER_CLASS))


class ArrayDataset(Dataset):
    """``split='train'`` or ``'val'`` of arrays ``x`` (flattened) and labels ``y``."""

    def __init__(self, split, x, y, train, val, classes):
        if split not in ('train', 'val'):
            raise ValueError(f"Invalid split: split={split!r} (must be 'train' or 'val')")
        index = train if split == 'train' else val
        self.x = torch.from_numpy(x[index].reshape(len(index), -1))
        self.y = torch.from_numpy(y[index])
        self.metainfo = dict(classes=classes, split=split)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], labels=self.y[i])


@DATASETS.register_module()
class DigitsDataset(ArrayDataset):
    """``split='train'`` (1437 images) or ``'val'`` (360, 36 per class)."""

    def __init__(self, split: str = 'train'):
        super().__init__(split, *_split(), classes=tuple(str(c) for c in range(10)))


@MODELS.register_module()
class DigitsMLP(BaseModel):
    """in_features -> hidden -> hidden -> num_classes, ReLU (the digits' 64 -> 10 by
    default)."""

    def __init__(self, hidden: int = 128, in_features: int = 64, num_classes: int = 10):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(in_features, hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
            torch.nn.Linear(hidden, num_classes))

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
