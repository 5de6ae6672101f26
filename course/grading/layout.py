"""Where a course keeps its folders and gradebook, as its ``nbgrader_config.py`` says: for ``course grade``.

nbgrader's ``CourseDirectory`` settings move the course root
(``CourseDirectory.root``), rename the step folders (``source_directory``,
``release_directory``, ``submitted_directory``, ``autograded_directory``,
``feedback_directory``) and move the gradebook (``db_url``). ``course grade``
(course/grading/batch.py) reads and writes where nbgrader itself, and so the Formgrader,
would: :func:`read` gives those places as a :class:`Layout`, with the one setting of
``course grade``'s own that the file may hold: ``CourseGrade.memory_gib_by_assignment``,
a lower memory limit for some assignments' kernels (as ``CrashTolerantExecute.timeout_by_assignment``
shortens their cells' time limit).

What ``course grade`` cannot follow stops it before any grade changes
(:class:`LayoutError`): a gradebook that is not an SQLite file (each grading
workspace works on a copy of it), a folder name that is not one plain name, two
steps sharing a folder, or another ``directory_structure``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# nbgrader's defaults (nbgrader/coursedir.py, 0.9.6).
FOLDERS = {"source_directory": "source", "release_directory": "release", "submitted_directory": "submitted",
           "autograded_directory": "autograded", "feedback_directory": "feedback"}
DIRECTORY_STRUCTURE = "{nbgrader_step}/{student_id}/{assignment_id}"
GRADEBOOK = "gradebook.db"
SQLITE = "sqlite:///"


class LayoutError(Exception):
    """The course's nbgrader configuration is one ``course grade`` cannot follow (or cannot be read)."""


@dataclass(frozen=True)
class Layout:
    """A course's folders and gradebook. ``root`` is the course root nbgrader uses; ``config_folder`` the folder
    holding ``nbgrader_config.py``, where ``course grade`` runs nbgrader (``grades.csv`` is written there)."""

    config_folder: Path
    root: Path
    source: str = "source"
    release: str = "release"
    submitted: str = "submitted"
    autograded: str = "autograded"
    feedback: str = "feedback"
    gradebook: Path | None = None
    memory_gib_by_assignment: tuple[tuple[str, float], ...] = ()

    def memory_gib(self, assignment: str, limit: float) -> float:
        """The memory limit (GiB) of ``assignment``'s kernels: ``limit`` (``course grade --memory-gib``), or the
        configuration's lower one for that assignment."""
        return min([limit, *(gib for name, gib in self.memory_gib_by_assignment if name == assignment)])

    @property
    def gradebook_file(self) -> Path:
        """The SQLite gradebook: ``db_url``'s file, or ``gradebook.db`` in the course root."""
        return self.gradebook if self.gradebook is not None else self.root / GRADEBOOK

    @property
    def db_url(self) -> str:
        return f"{SQLITE}{self.gradebook_file}"

    def step(self, name: str) -> Path:
        """The folder of a step, ``"submitted"`` or another key of :data:`FOLDERS` without ``_directory``."""
        return self.root / getattr(self, name)

    def hidden(self) -> list[Path]:
        """The folders the sandbox hides: the course root, the configuration's folder, and the gradebook's folder
        when it lies outside them (each once, none inside another)."""
        hidden: list[Path] = []
        for path in (self.root, self.config_folder, self.gradebook_file.parent):
            if not any(path == kept or kept in path.parents for kept in hidden):
                hidden = [kept for kept in hidden if path not in kept.parents] + [path]
        return hidden

    def workspace_options(self, workspace: Path) -> list[str]:
        """nbgrader options that keep a grading workspace's nbgrader inside ``workspace``, whatever the
        configuration copied there says of the root and the gradebook."""
        return [f"--CourseDirectory.root={workspace}", f"--CourseDirectory.db_url={SQLITE}{workspace / GRADEBOOK}"]


def _config(config_folder: Path):
    from traitlets.config import Config
    from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

    try:
        return PyFileConfigLoader("nbgrader_config.py", path=str(config_folder)).load_config()
    except ConfigFileNotFound:
        return Config()
    except Exception as error:  # the instructor's own file: its error, said plainly
        raise LayoutError(f"nbgrader_config.py cannot be read ({type(error).__name__}: {error})") from None


def read(config_folder: Path) -> Layout:
    """The layout ``config_folder/nbgrader_config.py`` gives (nbgrader's defaults without one);
    :class:`LayoutError` naming every setting ``course grade`` cannot follow."""
    config_folder = config_folder.resolve()
    config = _config(config_folder)
    settings = config.CourseDirectory
    wrong: list[str] = []
    root = config_folder
    if settings.get("root"):
        root = (config_folder / Path(settings["root"]).expanduser()).resolve()
    folders = {}
    for setting, default in FOLDERS.items():
        name = settings.get(setting, default)
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
            wrong.append(f"CourseDirectory.{setting} = {name!r} (course grade needs one plain folder name)")
        folders[setting.removesuffix("_directory")] = name
    if len(set(folders.values())) < len(folders):
        wrong.append(f"two steps share a folder ({', '.join(f'{k}: {v!r}' for k, v in folders.items())})")
    gradebook = None
    db_url = settings.get("db_url")
    if db_url:
        if not (isinstance(db_url, str) and db_url.startswith(SQLITE) and len(db_url) > len(SQLITE)):
            wrong.append(f"CourseDirectory.db_url = {db_url!r} (course grade needs an SQLite file, "
                         f"{SQLITE}/path/to/gradebook.db: each grading workspace works on a copy of it)")
        else:
            gradebook = (config_folder / db_url[len(SQLITE):]).resolve()
            if gradebook.parent == Path(gradebook.anchor):
                wrong.append(f"CourseDirectory.db_url = {db_url!r} (the sandbox hides the gradebook's folder: keep "
                             "it out of the file system's root folder)")
    structure = settings.get("directory_structure", DIRECTORY_STRUCTURE)
    if structure != DIRECTORY_STRUCTURE:
        wrong.append(f"CourseDirectory.directory_structure = {structure!r} (course grade needs nbgrader's "
                     f"{DIRECTORY_STRUCTURE!r})")
    memory = config.CourseGrade.get("memory_gib_by_assignment", {})
    if not (isinstance(memory, dict) and all(
            isinstance(name, str) and isinstance(gib, (int, float)) and not isinstance(gib, bool) and gib > 0
            for name, gib in memory.items())):
        wrong.append(f"CourseGrade.memory_gib_by_assignment = {memory!r} (course grade needs a dict of assignment "
                     "names to numbers of GiB above 0)")
        memory = {}
    if wrong:
        raise LayoutError("nbgrader_config.py sets what course grade cannot follow: " + "; ".join(wrong))
    return Layout(config_folder, root, gradebook=gradebook, **folders,
                  memory_gib_by_assignment=tuple((name, float(gib)) for name, gib in sorted(memory.items())))
