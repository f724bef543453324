"""The project sets itself up as the README says: two commands, one environment, no AGPL."""

from __future__ import annotations

import importlib.metadata
import pathlib
import re
import tomllib

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


def readme_quick_start() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```(?:sh|bash)?\n(.*?)```", section, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def test_readme_quick_start_is_two_commands_and_ci_runs_the_test_one():
    commands = readme_quick_start()
    assert commands == ["make course", "make test"]
    ci = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip()
        and not line.lstrip().startswith("#")
        and not line.startswith(("set ", "cd "))
    ]
    assert ci == ["make test"]


def test_environment_yml_installs_what_pyproject_declares():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"])
    for extra in project["optional-dependencies"]:
        declared |= set(project["optional-dependencies"][extra])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {p for p in pip if not p.startswith("-e")}
    assert listed == declared
    assert "-e ." in pip


def test_no_agpl_counter():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    assert not [r for r in requirements if "ultralytics" in r]
    meta = importlib.metadata.metadata("thop")
    assert meta["License"] == "MIT" and "Lyken17/pytorch-OpCounter" in meta["Home-page"]
    dists = {d.metadata["Name"].lower() for d in importlib.metadata.distributions()}
    assert "ultralytics-thop" not in dists


def test_torch_range_is_wide_and_the_makefile_pins_the_cpu_build():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_req = next(d for d in deps if d.startswith("torch"))
    assert torch_req == "torch>=2.1"  # GPU users bring their own build
    assert "TORCH_SPEC ?= torch==2.13.0" in (ROOT / "Makefile").read_text()


def test_readme_package_picture_names_real_modules():
    text = (ROOT / "README.md").read_text()
    section = text.split("## How the package is organised", 1)[1].split("\n## ", 1)[0]
    names = re.findall(r"^\s+([a-z_]+(?:\.py|/))", section, re.M)
    assert len(names) >= 10
    for name in names:
        assert (
            (ROOT / "effnb" / name).exists()
            or (ROOT / "effnb" / "models" / name).exists()
            or (ROOT / "effnb" / "nas" / name).exists()
        ), name


def test_notebooks_are_numbered_import_effnb_and_carry_outputs():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, "no notebooks"
    for nb in notebooks:
        assert re.match(r"^\d\d_[a-z0-9_]+\.ipynb$", nb.name), nb.name
        text = nb.read_text()
        assert "import effnb" in text or "from effnb" in text, nb.name
        assert '"output_type"' in text, f"{nb.name} has no stored outputs"
        assert "NBVAL_CHECK_OUTPUT" in text, f"{nb.name} checks no output"


def test_readme_parity_table_matches_the_registry():
    import effnb

    text = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| (\d+) \| ([\d,]+) \| ([\d,]+) \|", text, re.M)
    named = [n for n in effnb.list_models() if effnb.model_info(n).reference_params]
    assert [r[0] for r in rows] == named
    for name, size, params, macs in rows:
        info = effnb.model_info(name)
        assert (int(size), int(params.replace(",", "")), int(macs.replace(",", ""))) == (
            info.input_size,
            info.reference_params,
            info.reference_macs,
        )


def _requirement_name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].lower().replace("_", "-")


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin (name==version)"
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_constraints_pin_every_declared_dependency_but_torch():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    pins = _constraints()
    missing = sorted({_requirement_name(r) for r in requirements} - set(pins) - {"torch"})
    assert not missing, f"constraints.txt has no pin for {missing}: run make lock"
    assert "torch" not in pins  # TORCH_SPEC picks the build (CPU here, CUDA for GPU users)
    assert pins.get("ultralytics-thop") is None


def test_constraints_are_what_the_makefile_installs_with_and_the_readme_names():
    makefile = (ROOT / "Makefile").read_text()
    assert "CONSTRAINTS ?= constraints.txt" in makefile
    assert makefile.count("-c $(CONSTRAINTS)") == 2  # the course/test venv and the book extra
    readme = " ".join((ROOT / "README.md").read_text().split())
    torch_pin = re.search(r"TORCH_SPEC \?= torch==([\d.]+)", makefile).group(1)
    assert f"torch {torch_pin}" in readme
    pins = _constraints()
    for name in ("numpy", "onnxruntime", "openvino", "jupyterlab"):
        assert f"{name} {pins[name]}" in readme, f"README does not name {name} {pins[name]}"


def test_no_path_of_one_machine_in_the_tree():
    import subprocess

    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    pattern = re.compile(r"(?<![\w.])/(work|root|home|Users|tmp)/\w")
    found = []
    for name in files:
        path = ROOT / name
        if path.suffix in {".png", ".jpg", ".pt", ".npz"} or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        found += [f"{name}: {m.group(0)}" for m in pattern.finditer(text)]
    assert not found, f"absolute paths of one machine: {found[:10]}"
