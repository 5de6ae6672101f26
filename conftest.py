"""pytest setup shared by tests/ and the notebooks under source/ (run by nbval)."""

import shutil
from pathlib import Path

ROOT = Path(__file__).parent
SAMPLE_MODEL = ROOT / "tests" / "submissions" / "08_cifar_challenge_reference.keras"
CHALLENGE_MODEL = ROOT / "source" / "08_cifar_challenge" / "08_cifar_challenge.keras"


def pytest_sessionstart(session):
    """Under the grading budget 08_cifar_challenge loads its trained model file instead of
    training for about 20 minutes: give the source notebook the sample model (git-ignored there,
    never released) unless an instructor's own model is already in its place."""
    if not CHALLENGE_MODEL.exists():
        shutil.copyfile(SAMPLE_MODEL, CHALLENGE_MODEL)
