"""The step benchmark runs in its quick mode and prints every row it promises."""
import json
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.mark.slow
def test_benchmark_quick_prints_every_row(tmp_path):
    out_json = tmp_path / 'bench.json'
    out_png = tmp_path / 'bench.png'
    proc = subprocess.run(
        [sys.executable, 'tools/analysis_tools/benchmark_optimizers.py', '--quick',
         '--cases', 'resnet50', 'small2000', '--json', str(out_json), '--plot', str(out_png)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for row in ('mmlion Lion (default)', 'mmlion Lion, skip_nonfinite',
                'mmlion Lion fused, bf16 state', 'torch AdamW fused',
                'torch AdamW foreach', 'torch SGD momentum fused'):
        assert out.count(f'| {row} |') == 3, row  # resnet50 x2 groupings, small2000 x1
    assert out.count('memory bandwidth') == 3
    results = json.loads(out_json.read_text())['results']
    assert len(results) == 3
    for rows in results.values():
        by_name = {r['name']: r for r in rows}
        assert by_name['mmlion Lion (default)']['state_bytes_per_param'] == 4.0
        assert by_name['mmlion Lion fused, bf16 state']['state_bytes_per_param'] == 2.0
        assert by_name['torch AdamW fused']['state_bytes_per_param'] == 8.0
        assert all(r['ms'] > 0 for r in rows)
    assert out_png.stat().st_size > 10_000
