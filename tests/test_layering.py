"""The tower holds: import-linter's contracts (pyproject.toml) pass, and the engine imports alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UPPER_FLOORS = ("minilora.nn", "minilora.optim", "minilora.models", "minilora.lora", "minilora.data",
                "minilora.train", "minilora.experiments", "minilora.bench", "minilora.cli", "minilora.plots",
                "minilora.io", "minilora.subspace")


def loaded_after(statement: str) -> set[str]:
    """The minilora modules a fresh interpreter has loaded after running ``statement``."""
    code = (f"import sys\n{statement}\n"
            "import json; print(json.dumps(sorted(m for m in sys.modules if m.startswith('minilora'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_linter_contracts_are_kept():
    lint_imports = pytest.importorskip("importlinter.cli").lint_imports
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml")) == 0, "an import breaks a layer: run lint-imports"


@pytest.mark.parametrize("statement", [
    "import minilora.backend",
    "import minilora.engine.tensor",
    "import minilora.engine.autograd",
    "from minilora.engine import ops, fused, gradcheck, creation",
    "import minilora.functional",
    "import minilora as ml",
])
def test_the_engine_loads_nothing_from_the_upper_floors(statement):
    loaded = loaded_after(statement)
    assert not {m for m in loaded if m.startswith(UPPER_FLOORS)}, f"{statement} loaded {sorted(loaded)}"


def test_pretrained_is_resolved_lazily_at_the_package_root():
    loaded = loaded_after("import minilora as ml\nml.pretrained")
    assert "minilora.models.zoo" in loaded and "minilora.lora" not in loaded


def test_no_public_name_shadows_a_module():
    import minilora as ml

    for path in (ROOT / "minilora").iterdir():
        name = path.stem if path.suffix == ".py" else path.name
        if name.startswith("_") or not (path.suffix == ".py" or (path / "__init__.py").exists()):
            continue
        attr = getattr(ml, name, None)
        assert attr is None or type(attr).__name__ == "module", f"ml.{name} is not the module minilora.{name}"
