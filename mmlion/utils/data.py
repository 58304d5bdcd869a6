"""Generate the datasets that mmlion ships as code before a run needs them."""
import os.path as osp
from typing import Iterator, Sequence, Tuple

from mmengine.config import Config

from mmlion.datasets.shapes import generate as generate_shapes

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def dataset_configs(cfg: Config, loaders: Sequence[str] = LOADERS) -> Iterator[Tuple[str, dict]]:
    """Every dataset config the loaders build, wrapped ones included (RepeatDataset's
    ``dataset``, ConcatDataset's ``datasets``), outermost first, each with its key."""
    for loader in loaders:
        stack = [(f'{loader}.dataset', (cfg.get(loader) or {}).get('dataset'))]
        while stack:
            key, dataset = stack.pop()
            if not isinstance(dataset, dict):
                continue
            yield key, dataset
            if 'dataset' in dataset:
                stack.append((f'{key}.dataset', dataset['dataset']))
            for i, d in enumerate(dataset.get('datasets') or []):
                stack.append((f'{key}.datasets[{i}]', d))


def prepare_generated_data(cfg: Config) -> None:
    """Generate the Shapes dataset wherever the config reads it from ``*/shapes/``.

    A no-op when an identical copy is already there, so every process may call it.
    """
    roots = {d['data_root'] for _, d in dataset_configs(cfg) if d.get('data_root')}
    for root in sorted(roots):
        if osp.basename(osp.normpath(root)) == 'shapes':
            generate_shapes(root)
