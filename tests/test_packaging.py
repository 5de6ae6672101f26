"""environment.yml (conda) and pyproject.toml (pip) must list the same packages."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[1]


def _requirement(text: str) -> tuple[str, str]:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", text).groups()
    return re.sub(r"[-_.]+", "-", name).lower(), spec.replace(" ", "")


def test_environment_yml_lists_what_pyproject_lists():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_side = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    conda_side = [d for d in environment if isinstance(d, str) and not d.startswith(("python", "pip"))]
    conda_side += [d for entry in environment if isinstance(entry, dict) for d in entry["pip"] if not d.startswith("-e")]
    # conda writes `name=1.2` for an exact pin where pip writes `name==1.2`
    conda = dict(_requirement(re.sub(r"(?<![=<>!])=(?!=)", "==", d)) for d in conda_side)
    assert conda == dict(_requirement(r) for r in pip_side)


def test_environment_yml_installs_the_course_package():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    pip_entries = [d for entry in environment if isinstance(entry, dict) for d in entry["pip"]]
    assert "-e ." in pip_entries


def test_license_is_an_spdx_expression_with_its_file():
    """PEP 639: `license` is an SPDX string (a TOML table is deprecated by setuptools,
    which needs 77 or later for the string) and the LICENSE file ships with it."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert "setuptools>=77" in pyproject["build-system"]["requires"]


def test_installed_metadata_carries_the_license_expression():
    from importlib.metadata import metadata

    installed = metadata("cnn-course")
    assert installed["License-Expression"] == "MIT", (
        "the installed metadata predates the SPDX licence: reinstall (`make` does when pyproject.toml changes)"
    )
    assert "LICENSE" in (installed.get_all("License-File") or [])
