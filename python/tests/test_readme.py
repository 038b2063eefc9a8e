"""The README's Python example runs as written."""

import os
import re
import subprocess
import sys


def test_the_readme_example_runs(root, tmp_path):
    text = (root / "README.md").read_text()
    section = text[text.index("## Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "example.py").write_text(code)
    env = dict(os.environ, MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "example.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ess = float(re.search(r"flow ESS ([0-9.]+)", done.stdout).group(1))
    assert ess > 0.9, done.stdout
    assert (tmp_path / "runs" / "banana-fab" / "checkpoint.json").exists()
    assert (tmp_path / "banana-pairs.png").stat().st_size > 10_000
