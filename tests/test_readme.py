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


def test_the_several_adapters_example_prints_what_the_readme_says(capsys):
    """The multi-adapter block runs as written, and the errors the text after it quotes are the ones it prints."""
    text = README.read_text()
    block = re.search(r"\*\*Several adapters on one model\*\*.*?```python\n(.*?)```\n\n(.*?)\n\n", text, re.DOTALL)
    assert block, "README.md lost its several-adapters python block"
    exec(compile(block.group(1), "README.md", "exec"), {})
    printed = dict(re.findall(r"^(\w+) +rank \d+: relative error (\d\.\d{3})$", capsys.readouterr().out, re.MULTILINE))
    assert printed["cat"] == "0.000" and set(printed) == {"cat", "svd", "linear"}
    after = " ".join(block.group(2).split())  # the paragraph after the block, on one line
    assert "`cat` at rank 8 with error 0.000" in after
    for kind in ("svd", "linear"):
        assert f"`{kind}` at rank 4 with {printed[kind]}" in after, kind
