"""Walk the dataset configs of a config's data loaders."""
from typing import Iterator, Sequence, Tuple

from mmengine.config import Config

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
