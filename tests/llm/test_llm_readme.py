"""The README's examples run as written."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parents[2] / "libs" / "llm" / "README.md"


def test_every_python_example_in_the_readme_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks
    for block in blocks:
        subprocess.run([sys.executable, "-c", block], check=True, timeout=30)
