"""JupyterLab's settings for students and for the instructor (jupyter/, `make lab` and
`make lab-instructor`): students get no Formgrader, Create Assignment or Course List,
and nobody is asked about Jupyter news. Checked in the files, with `jupyter labextension
list`, and against a running JupyterLab for each (a few seconds each, no browser)."""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
JUPYTER = ROOT / "jupyter"
BIN = Path(sys.executable).parent
HIDDEN_FROM_STUDENTS = {"@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment", "@jupyter/nbgrader:course-list"}
KEPT_FOR_STUDENTS = {"@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:validate-assignment", "@jupyter/nbgrader:menu"}
NEWS = "@jupyterlab/apputils-extension:notification"


def _environment(who: str, home: Path) -> dict:
    """Only `who`'s folder on the config path; a throwaway user config and settings."""
    return dict(
        os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", JUPYTER_CONFIG_PATH=str(JUPYTER / who),
        JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTERLAB_SETTINGS_DIR=str(home / "user-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
    )


def test_students_page_config_hides_the_instructors_extensions():
    disabled = json.loads((JUPYTER / "student" / "labconfig" / "page_config.json").read_text())["disabledExtensions"]
    assert disabled == dict.fromkeys(HIDDEN_FROM_STUDENTS, True)
    server = json.loads((JUPYTER / "student" / "jupyter_server_config.json").read_text())["ServerApp"]
    assert server["jpserver_extensions"] == {
        "nbgrader.server_extensions.formgrader": False, "nbgrader.server_extensions.course_list": False,
    }
    assert not (JUPYTER / "instructor" / "labconfig").exists()


def test_the_plugin_ids_are_nbgraders():
    """A renamed plugin would silently stay enabled: the ids must be in nbgrader's bundle."""
    import nbgrader

    bundle = Path(nbgrader.__file__).parent / "labextension" / "static"
    code = "".join(p.read_text(errors="replace") for p in bundle.glob("*.js"))
    for plugin in HIDDEN_FROM_STUDENTS | KEPT_FOR_STUDENTS:
        assert f'"{plugin}"' in code, plugin


def test_jupyter_news_is_off_for_everyone():
    overrides = json.loads((JUPYTER / "settings" / "overrides.json").read_text())
    assert overrides == {NEWS: {"fetchNews": "false", "checkForUpdates": False}}
    for who in ("student", "instructor"):
        assert '"settings"' in (JUPYTER / who / "jupyter_lab_config.py").read_text()


@pytest.mark.parametrize("who", ["student", "instructor"])
def test_labextension_list(who, tmp_path):
    done = subprocess.run([str(BIN / "jupyter"), "labextension", "list"], env=_environment(who, tmp_path),
                          capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    listed = set(re.findall(r"^\s+(@jupyter/nbgrader:\S+)$", output.split("Disabled extensions:")[-1], re.M))
    assert listed == (HIDDEN_FROM_STUDENTS if who == "student" else set()), output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("who", ["student", "instructor"])
def test_running_lab(who, tmp_path):
    """What the server hands the browser: the page's disabled plugins, the news setting's
    default, and whether the formgrader is served at all."""
    port, token = _free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "lab.log", "w")
    server = subprocess.Popen(
        [str(BIN / "jupyter"), "lab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}"],
        cwd=tmp_path, env=_environment(who, tmp_path), stdout=log, stderr=subprocess.STDOUT,
    )

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"{base}{path}?token={token}", timeout=20) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, ""

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                get("/api/status")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:])
                time.sleep(0.3)
        status, page = get("/lab")
        assert status == 200
        config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S).group(1))
        assert set(config["disabledExtensions"]) == (HIDDEN_FROM_STUDENTS if who == "student" else set())
        status, body = get(f"/lab/api/settings/{NEWS}")
        assert status == 200
        news = json.loads(body)["schema"]["properties"]["fetchNews"]
        assert news["default"] == "false"
        assert get("/formgrader")[0] == (404 if who == "student" else 200)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
