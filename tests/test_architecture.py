"""The package's layering holds (import-linter's contracts in pyproject.toml), and breaking it fails."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO

LINT = Path(sys.executable).with_name("lint-imports")
PACKAGE = REPO / "search"


def lint(package_parent: Path) -> subprocess.CompletedProcess:
    """Run the project's contracts over the `search` package found in `package_parent`."""
    return subprocess.run([str(LINT), str(REPO / "pyproject.toml"), "--no-cache"], cwd=package_parent,
                          env={"PYTHONPATH": str(package_parent), "PATH": ""}, capture_output=True, text=True, timeout=120)


def test_the_layer_contracts_are_kept():
    done = lint(REPO)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


def _copy_with(tmp_path: Path, module: str, line: str) -> Path:
    copy = tmp_path / "search"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    path = copy / module
    path.write_text(path.read_text() + f"\n{line}\n")
    return tmp_path


def test_an_import_cycle_inside_a_layer_breaks_the_build(tmp_path):
    """spec.families imports spec.genotypes; the reverse import closes a cycle within one layer."""
    done = lint(_copy_with(tmp_path, "spec/genotypes.py", "import search.spec.families  # a deliberate cycle"))
    assert done.returncode == 1, done.stdout[-3000:]
    assert "No import cycle between modules or sub-packages, at any depth BROKEN" in done.stdout
    assert "- .genotypes -> .families" in done.stdout  # the import that closes it, named


def test_an_upward_import_breaks_the_layers_even_inside_a_function(tmp_path):
    """An import inside a function hides nothing: tracking may not reach up into the engine."""
    line = "def _sneaky():\n    from search.engine import tuner  # noqa: F401"
    done = lint(_copy_with(tmp_path, "tracking/provenance.py", line))
    assert done.returncode == 1, done.stdout[-3000:]
    assert "Imports go one way" in done.stdout and "BROKEN" in done.stdout
    assert "search.tracking.provenance -> search.engine.tuner" in done.stdout


def test_only_the_compat_module_imports_kerastuners_private_modules():
    """KerasTuner's public API is `keras_tuner.*` minus `keras_tuner.src`; its internals stay behind one door."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(name.startswith("keras_tuner.src") for name in names) and path.name != "compat.py":
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not offenders


def test_no_code_branches_on_a_family_name_outside_the_registry():
    """`if model.family == "cells"` is how families spread through a codebase; the schema answers instead."""
    from search.spec.families import FAMILIES

    allowed = {PACKAGE / "spec" / "families.py", PACKAGE / "models" / "registry.py"}
    offenders = []
    for path in set(PACKAGE.rglob("*.py")) - allowed:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if any(isinstance(o, ast.Constant) and o.value in FAMILIES for o in operands):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not offenders


def test_the_shared_axes_are_declared_once_and_built_by_one_design():
    """A shared axis in the schema must reach the builders: `Design` takes exactly the schema's shared axes."""
    import dataclasses

    from search.models.blocks import Design
    from search.spec.families import ConvNetModel

    assert [f.name for f in dataclasses.fields(Design)] == list(ConvNetModel.model_fields)
