"""Bounds at the ends of their ranges raise no numpy warning (issue 22 item 13): ``_reach`` divides by a bound of
1e-300 and multiplies by counts up to 2**53, which overflows to inf (meaning only "far past the bound")."""

from __future__ import annotations

import subprocess
import sys

TEXT = ("c = @cluster(node_count => @between(1, 9007199254740992), cluster_memory_size => @atleast(1e-300), "
        "node_vcpus_count => @atleast(100000))\n")


def test_extreme_bounds_explain_without_a_runtime_warning(tmp_path):
    (tmp_path / "w.ccc").write_text(TEXT)
    proc = subprocess.run([sys.executable, "-W", "error", "-m", "ccdsl", "resolve", str(tmp_path / "w.ccc")],
                          capture_output=True, text=True, timeout=300)
    assert "Warning" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 1, proc.stderr  # no type has 100000 vCPUs: the answer is the conflict
    assert "node_vcpus_count" in proc.stdout + proc.stderr
