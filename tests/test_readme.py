"""The README's code runs as written (so the first thing a student copies never rots)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_tour_in_code_runs(tmp_path, monkeypatch):
    text = README.read_text()
    block = re.search(r"## A tour in code\n\n```python\n(.*?)```", text, re.DOTALL)
    assert block, "README.md lost its '## A tour in code' python block"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    assert namespace["x"].grad.tolist() == [[2.0, 4.0]]  # the value the README's comment shows
    assert (tmp_path / "runs" / "my-adapter" / "adapter_model.safetensors").is_file()
