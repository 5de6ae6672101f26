# JupyterLab's default settings come from ../settings/overrides.json (Jupyter news off).
# Read when this folder is on JUPYTER_CONFIG_PATH (`make lab`, `make lab-instructor`).
import os

c.LabApp.app_settings_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "settings")  # noqa: F821
