"""The step benchmark runs in its quick mode and prints every row it promises."""
import json
import os.path as osp
import re
import subprocess

import pytest
import torch

from helpers import ROOT, load_tool, python_tool


@pytest.mark.slow
def test_benchmark_quick_prints_every_row(tmp_path):
    out_json = tmp_path / 'bench.json'
    out_png = tmp_path / 'bench.png'
    out = python_tool('tools/analysis_tools/benchmark_optimizers.py', '--quick', '--cases',
                      'resnet50', 'small2000', '--json', out_json, '--plot', out_png,
                      timeout=600)
    for row in ('mmlion Lion (default)', 'mmlion Lion, skip_nonfinite',
                'mmlion Lion fused, bf16 state', 'OptimWrapper(Lion), clip_grad',
                'GuardedOptimWrapper(Lion), clip_grad',
                'GuardedOptimWrapper(Lion), no clipping', 'torch AdamW fused',
                'torch AdamW foreach', 'torch SGD momentum fused'):
        assert out.count(f'| {row} |') == 3, row  # resnet50 x2 groupings, small2000 x1
    assert out.count('memory bandwidth') == 3
    assert out.count('guard with clipping / clipping alone: ') == 3
    results = json.loads(out_json.read_text())['results']
    assert len(results) == 3
    for rows in results.values():
        by_name = {r['name']: r for r in rows}
        assert by_name['mmlion Lion (default)']['state_bytes_per_param'] == 4.0
        assert by_name['mmlion Lion fused, bf16 state']['state_bytes_per_param'] == 2.0
        assert by_name['torch AdamW fused']['state_bytes_per_param'] == 8.0
        assert all(r['ms'] > 0 for r in rows)
    assert out_png.stat().st_size > 10_000


@pytest.mark.slow
def test_host_overhead_mode_runs(tmp_path):
    """--host-overhead on a small case: one line per case and the summary line (the
    numbers are this machine's, not asserted)."""
    out = python_tool('tools/analysis_tools/benchmark_optimizers.py', '--host-overhead',
                      '--cases', 'resnet50', '--steps', '3', '--warmup', '1', '--buckets', '4',
                      timeout=300)
    assert ('resnet50: 161 groups of one tensor, 4 lr bucket(s): mmlion Lion fused (CUDA '
            'host path') in out
    assert 'torch AdamW fused on the CPU, one-element tensors' in out
    assert re.search(r'host overhead: resnet50 \d+\.\d{3} ms', out), out[-2000:]


def test_gpu_check_scripts_parse_and_ask_for_a_gpu():
    """The one-shot GPU check and its wheel fetcher are valid bash; the bandwidth probe
    says it needs a GPU where there is none."""
    for script in ('gpu_check.sh', 'fetch_gpu_wheels.sh'):
        subprocess.run(['bash', '-n', osp.join(ROOT, 'tools/analysis_tools', script)],
                       check=True)
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match='kernel_bandwidth.py needs a CUDA GPU'):
            load_tool('tools/analysis_tools/kernel_bandwidth.py').main([])
