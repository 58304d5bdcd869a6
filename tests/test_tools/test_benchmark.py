"""The step benchmark runs in its quick mode and prints every row it promises."""
import json

import pytest

from helpers import python_tool


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
