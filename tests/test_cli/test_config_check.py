"""mmlion.cli.config_check: what it says about a config's data, from the config alone."""
import pytest
from mmengine.config import Config

from helpers import DEMO
from mmlion.cli import ConfigError, check_config


def demo_config(tmp_path, **options) -> Config:
    cfg = Config.fromfile(DEMO)
    cfg.merge_from_dict(options)
    cfg.work_dir = str(tmp_path / 'work_dir')
    return cfg


def test_missing_data_names_the_configs_own_preparation_command(tmp_path):
    root = str(tmp_path / 'elsewhere') + '/'
    cfg = demo_config(tmp_path, **{'train_dataloader.dataset.data_root': root})
    with pytest.raises(ConfigError) as caught:
        check_config(cfg)
    message = str(caught.value)
    assert 'train_dataloader.dataset.ann_file' in message
    assert f'generate_shapes.py {root}`' in message  # the template, with this data_root


def test_a_config_without_a_preparation_command_gets_no_hint(tmp_path):
    root = str(tmp_path / 'elsewhere') + '/'
    cfg = demo_config(tmp_path, **{'train_dataloader.dataset.data_root': root})
    cfg.pop('data_preparation')
    with pytest.raises(ConfigError) as caught:
        check_config(cfg)
    assert 'make it with' not in str(caught.value)
