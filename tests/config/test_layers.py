"""The import contracts in pyproject.toml ([tool.importlinter]) hold: layers only look down (issue 20 item 2)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept():
    # lint-imports sits next to the running interpreter in the venv; run from the root so it finds pyproject.toml.
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
