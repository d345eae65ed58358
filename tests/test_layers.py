"""The import graph between top-level packages runs one way (scripts/check_layers.py), with no circles."""

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("check_layers", ROOT / "scripts" / "check_layers.py")
assert spec and spec.loader
check_layers = importlib.util.module_from_spec(spec)
sys.modules["check_layers"] = check_layers
spec.loader.exec_module(check_layers)


def test_the_project_imports_only_downward_and_in_no_circle():
    graph = check_layers.project_imports(ROOT)
    assert check_layers.violations(graph) == []
    assert check_layers.circles(graph) == []
    arrows = check_layers.package_arrows(graph)
    assert ("client", "abci_app") in arrows and ("cli", "experiments") in arrows


def _tree(root: Path, files: dict[str, str]) -> Path:
    for package in check_layers.LAYERS:
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").write_text("")
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_a_back_arrow_a_sideways_arrow_and_a_circle_are_reported(tmp_path):
    root = _tree(
        tmp_path,
        {
            "client/sdk.py": "def f():\n    from cli import main  # lazy, still an arrow\n",
            "gateway/server.py": "from participant import runtime\n",
            "participant/runtime.py": "",
            "cli/main.py": "",
            "abci_app/a.py": "from abci_app import b\n",
            "abci_app/b.py": "import abci_app.a\n",
        },
    )
    graph = check_layers.project_imports(root)
    found = check_layers.violations(graph)
    assert found == [
        "client.sdk imports cli.main: client -> cli runs up",
        "gateway.server imports participant.runtime: gateway -> participant runs sideways",
    ]
    assert check_layers.circles(graph) == [["abci_app.a", "abci_app.b"]]


def test_the_cli_and_the_chain_load_without_the_ml_extra():
    """A validator installs without torch: `flchain app` must not import it (nor the plotting stack)."""
    heavy = ("torch", "sklearn", "matplotlib", "tqdm")
    probe = f"import sys, cli.main, cli.node; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
