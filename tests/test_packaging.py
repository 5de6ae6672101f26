"""Packaging: pyproject.toml's metadata and extras, environment.yml beside it, and the
student extra resolved for each platform students have (PyPI, dry runs)."""

import importlib.metadata
import json
import platform
import re
import subprocess
import sys
import tomllib
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
GRADING_AND_TEST_TOOLS = {"nbgrader", "pytest", "pytest-xdist", "playwright", "nbval"}  # (psutil comes with ipykernel)


def _key(text: str) -> tuple[str, str, str]:
    requirement = Requirement(text)
    return canonicalize_name(requirement.name), str(requirement.specifier), str(requirement.marker or "")


def test_environment_yml_lists_what_pyproject_lists():
    pip_side = [*PROJECT["dependencies"], *(r for extra in PROJECT["optional-dependencies"].values() for r in extra)]
    pip_side = [r for r in pip_side if canonicalize_name(Requirement(r).name) != "cnn-course"]  # `[student]` in `instructor`
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    conda_side = [d for d in environment if isinstance(d, str) and not d.startswith(("python", "pip"))]
    # conda writes `name=1.2` for an exact pin where pip writes `name==1.2`
    conda_side = [re.sub(r"(?<![=<>!])=(?!=)", "==", d) for d in conda_side]
    conda_side += [d for entry in environment if isinstance(entry, dict) for d in entry["pip"] if not d.startswith("-e")]
    assert sorted(map(_key, conda_side)) == sorted(map(_key, pip_side))


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


# Each platform: pip's `--platform` tags, its marker environment, and the TensorFlow
# distribution the student extra must pick there. TensorFlow 2.21's Linux wheels are
# manylinux_2_27, which a manylinux2014 (glibc 2.17) machine cannot take: the Linux
# platforms here are glibc 2.28 (Debian 10, Ubuntu 20.04, RHEL 8 and later), and since
# pip expands only the legacy manylinux2014 tag to older ones, every glibc tag is named.
def _glibc(arch: str, newest: int = 28) -> list[str]:
    return [f"manylinux_2_{minor}_{arch}" for minor in range(newest, 17, -1)] + [f"manylinux2014_{arch}"]


PLATFORMS = {
    "macos-arm64": (["macosx_12_0_arm64"], dict(sys_platform="darwin", platform_system="Darwin", platform_machine="arm64", os_name="posix"), "tensorflow"),
    "linux-aarch64": (_glibc("aarch64"), dict(sys_platform="linux", platform_system="Linux", platform_machine="aarch64", os_name="posix"), "tensorflow"),
    "linux-x86_64": (_glibc("x86_64"), dict(sys_platform="linux", platform_system="Linux", platform_machine="x86_64", os_name="posix"), "tensorflow-cpu"),
    "windows-amd64": (["win_amd64"], dict(sys_platform="win32", platform_system="Windows", platform_machine="AMD64", os_name="nt"), "tensorflow"),
}
WHEEL_PLATFORM = {"macos-arm64": "macosx_12_0_arm64", "linux-aarch64": "manylinux_2_27_aarch64",
                  "linux-x86_64": "manylinux_2_27_x86_64", "windows-amd64": "win_amd64"}
TENSORFLOWS = {"tensorflow", "tensorflow-cpu"}


def _requirements(extra: str, environment: dict) -> list[str]:
    """The dependencies plus `extra` (and the extras it names of this project), with
    markers evaluated for `environment`: pip evaluates markers for the machine it runs
    on even under `--platform`, so the dry runs below get the list already evaluated."""
    def evaluated(texts, extra=""):
        for text in texts:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate({**environment, "extra": extra}):
                continue
            if canonicalize_name(requirement.name) == "cnn-course":
                for named in sorted(requirement.extras):
                    yield from evaluated(PROJECT["optional-dependencies"][named], named)
                continue
            requirement.marker = None
            yield str(requirement)

    return [*evaluated(PROJECT["dependencies"]), *evaluated(PROJECT["optional-dependencies"][extra], extra)]


def test_extras_student_instructor_test():
    assert set(PROJECT["optional-dependencies"]) == {"student", "instructor", "test"}
    for tag, (_, environment, tensorflow) in PLATFORMS.items():
        environment = {**environment, "python_version": "3.11", "python_full_version": "3.11.0"}
        student = {canonicalize_name(Requirement(r).name) for r in _requirements("student", environment)}
        instructor = {canonicalize_name(Requirement(r).name) for r in _requirements("instructor", environment)}
        assert student & TENSORFLOWS == {tensorflow}, tag
        assert {"keras", "jupyterlab"} <= student and not student & GRADING_AND_TEST_TOOLS, tag
        assert student < instructor and {"nbgrader", "psutil"} <= instructor, tag


def test_requires_python_is_what_the_pins_support():
    """Keras 3.15 and nbgrader 0.9.6 need Python 3.11 (so does `tomllib` in course/grading/colab.py);
    TensorFlow 2.21 has wheels for 3.10-3.13. No upper bound: Colab installs the helpers
    next to whatever TensorFlow and Python it ships; the extras' pins refuse a Python
    TensorFlow 2.21 has no wheel for (pip: no matching distribution for tensorflow)."""
    supported = SpecifierSet(PROJECT["requires-python"])
    assert [v for v in ("3.10", "3.11", "3.12", "3.13") if v in supported] == ["3.11", "3.12", "3.13"]


def _pypi_or_skip():
    try:
        urllib.request.urlopen("https://pypi.org/simple/tensorflow/", timeout=15).close()
    except OSError as error:
        pytest.skip(f"needs PyPI to resolve the student extra for other platforms; pypi.org unreachable: {error}")


# Python 3.11 everywhere, and the newest Python requires-python admits that TensorFlow
# 2.21 has wheels for.
DRY_RUNS = [(tag, "3.11") for tag in PLATFORMS] + [("linux-x86_64", "3.13")]


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory):
    """`pip install --dry-run --only-binary=:all: --platform TAG` of the student extra for
    each platform, run side by side (about 15 s each, mostly waiting on PyPI):
    {(tag, Python): (exit status, pip's output, {distribution: wheel file name})}."""
    _pypi_or_skip()
    folder = tmp_path_factory.mktemp("dry-runs")

    def dry_run(run):
        tag, python = run
        tags, environment, _ = PLATFORMS[tag]
        environment = {**environment, "python_version": python, "python_full_version": f"{python}.0"}
        report = folder / f"{tag}-{python}.json"
        command = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
            "--only-binary=:all:", *(f"--platform={t}" for t in tags), "--python-version", python,
            "--target", str(folder / "target"), "--report", str(report),
            *_requirements("student", environment),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        wheels = {}
        if done.returncode == 0:
            for item in json.loads(report.read_text())["install"]:
                wheels[canonicalize_name(item["metadata"]["name"])] = item["download_info"]["url"].rsplit("/", 1)[-1]
        return done.returncode, done.stdout + done.stderr, wheels

    with ThreadPoolExecutor(len(DRY_RUNS)) as pool:
        return dict(zip(DRY_RUNS, pool.map(dry_run, DRY_RUNS)))


@pytest.mark.network
@pytest.mark.parametrize("tag, python", DRY_RUNS)
def test_student_extra_resolves_on(tag, python, dry_runs):
    returncode, output, wheels = dry_runs[tag, python]
    assert returncode == 0, output[-3000:]
    tensorflow = PLATFORMS[tag][2]
    assert wheels.keys() & TENSORFLOWS == {tensorflow}
    assert re.fullmatch(rf"{tensorflow.replace('-', '_')}-2\.21\.\d+-cp{python.replace('.', '')}-cp{python.replace('.', '')}-{WHEEL_PLATFORM[tag]}\.whl", wheels[tensorflow]), wheels[tensorflow]
    assert wheels["keras"].startswith("keras-3.") and "jupyterlab" in wheels
    assert not wheels.keys() & GRADING_AND_TEST_TOOLS, "the student extra pulls grading or test tools"


LOCK = ROOT / "requirements" / "grading-linux-x86_64-py311.txt"


def _locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version and " " not in line, f"not a pin: {line!r}"
            pins[canonicalize_name(name)] = version
    return pins


def test_the_grading_lock_satisfies_every_requirement_of_the_instructor_and_test_extras():
    """Every package `.[instructor,test]` needs on Linux x86_64 under Python 3.11 is pinned, at a version
    pyproject.toml allows; `make` installs from the lock there."""
    pins = _locked()
    environment = {**PLATFORMS["linux-x86_64"][1], "python_version": "3.11", "python_full_version": "3.11.7"}
    for extra in ("instructor", "test"):
        for text in _requirements(extra, environment):
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            assert name in pins, f"{name} ({extra}) is not in {LOCK.name}"
            assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name], text)
    assert "cnn-course" not in pins  # the course itself is installed from the checkout


@pytest.mark.skipif(not (sys.platform == "linux" and platform.machine() == "x86_64" and sys.version_info[:2] == (3, 11)),
                    reason="the lock is for Linux x86_64 with Python 3.11")
def test_this_environment_is_the_locked_one():
    """On the lock's platform `make` installs the lock: the tests and `course grade` run on its versions."""
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    differ = {name: (version, installed.get(name)) for name, version in _locked().items() if installed.get(name) != version}
    assert differ == {}, f"installed versions differ from {LOCK.name}: run `make` again (or `make lock`)"


def test_the_binder_image_recipe_installs_the_lock_bubblewrap_and_the_course():
    """binder/ is repo2docker's recipe for a JupyterHub image to grade in (not built here: no Docker daemon).
    It must install the locked environment, bubblewrap and this checkout, on the lock's Python."""
    binder = ROOT / "binder"
    assert (binder / "apt.txt").read_text().split() == ["bubblewrap"]
    assert (binder / "runtime.txt").read_text().strip() == "python-3.11"
    lines = [line.split("#")[0].strip() for line in (binder / "requirements.txt").read_text().splitlines()]
    lines = [line for line in lines if line]
    assert lines[0] == "-r ../requirements/grading-linux-x86_64-py311.txt" and (binder / lines[0][3:]).resolve() == LOCK
    assert [Requirement(line).name for line in lines[1:]] == ["nbgitpuller"] and "==" in lines[1]
    post_build = (binder / "postBuild").read_text()
    assert "pip install --no-deps -e ." in post_build and (binder / "postBuild").stat().st_mode & 0o111
