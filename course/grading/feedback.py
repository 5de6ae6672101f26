"""What students and instructors see of a graded notebook: visible tests and results, never the hidden
tests, and never a submission's scripts.

nbgrader's ``generate_feedback`` renders the autograded notebook, whose test
cells hold the hidden tests again (nbgrader issues 917 and 1363), and a failed
hidden test's traceback quotes the lines around the failure. This
preprocessor, configured in ``nbgrader_config.py``, removes the hidden regions
and cuts those cells' tracebacks to the exception's one-line message, which
the test author writes for students. Errors written by the judge
(course/grading/judge.py), which quote a failing line only when it is visible, stay whole.

Hidden tests never reach the student's kernel, but their inputs must: the judge calls the student's
functions on them there. Code in the kernel can keep those arguments and print them in a later cell, so
:class:`HideOutputsAfterHiddenTests` leaves out of the feedback the outputs of every cell the kernel ran
after the first test cell that has hidden tests (the judge's test results stay; the student's own notebook
has the rest), and of later test cells' failures on a visible line only the line, not the message, which
could quote a value the student's function returned.

:class:`SanitizeSubmittedHTML` runs in ``nbgrader autograde``: the autograded notebook is what formgrader
shows the instructor and what feedback is made from, and a submission's own HTML (an output's
``text/html``, ``<script>`` in a Markdown answer, an ``application/javascript`` display) would run there,
in the instructor's logged-in browser. Its HTML is cleaned with ``bleach``; outputs of other kinds that can
carry scripts are dropped.
"""

from __future__ import annotations

import html
import re
from typing import Any

import bleach
from bleach.css_sanitizer import CSSSanitizer
from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor
from nbgrader.utils import is_grade, is_locked, is_solution

from course.grading.judge import (BEGIN_HIDDEN, PRINTED_AFTER_HIDDEN, KernelUnavailable, StudentCodeError,
                                  builtin_exception_name)
from course.grading.wire import NotData


class HideHiddenTests(ClearHiddenTests):
    """``ClearHiddenTests`` for feedback, which also shortens the tracebacks of the cells it cleared."""

    def preprocess_cell(
        self, cell: NotebookNode, resources: ResourcesDict, cell_index: int
    ) -> tuple[NotebookNode, ResourcesDict]:
        had_hidden_tests = self.begin_test_delimeter in cell.source
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if had_hidden_tests:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error" and not _from_the_judge(output):
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources


HIDDEN_INPUTS_NOTE = ("[Outputs from here on are not shown in the feedback: these cells ran after the hidden tests had "
                      "called your functions on their inputs, which your code could print. Your own notebook has them; "
                      "test results are shown as usual.]\n")
OUTPUT_NOT_SHOWN = "[output not shown in the feedback]\n"


VISIBLE_MESSAGE_NOT_SHOWN = ("[message not shown in the feedback: this test ran after the hidden tests had called your "
                             "functions, and its message could quote what your code kept of their inputs; run the "
                             "test in your notebook to read it]")
VISIBLE_PRINT_NOT_SHOWN = ("[a visible check's print, not shown in the feedback: it ran after the hidden tests had "
                           "called your functions, and could show what your code kept of their inputs]\n")
# The exceptions the judge names itself (course/grading/judge.py); any other name is checked against Python's own.
JUDGE_ERRORS = frozenset(error.__name__ for error in (StudentCodeError, KernelUnavailable, NotData))


class HideOutputsAfterHiddenTests(NbGraderPreprocessor):
    """For feedback, before :class:`HideHiddenTests`: the outputs of each code cell after the first graded test
    cell holding hidden tests become one line saying they are not shown (the first such cell says why), except
    graded test cells', which only the judge and the grader write (course/grading/preprocessors.py).

    Those later test cells keep their hidden tests' prints and messages, but a failure on a visible line keeps
    only that line: its message could quote a value the student's function returned, such as the hidden inputs
    it kept (a function that returns them fails its test on purpose). For the same reason what a visible line
    printed once hidden tests had run (the judge marks it, :data:`course.grading.judge.PRINTED_AFTER_HIDDEN`) is
    one line saying why, and no cell shows its execution count (the kernel's counter, which the student sets).
    An exception named by the student (only Python's own and the judge's names are kept) reads
    ``StudentCodeError``."""

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        after_hidden, noted = False, False
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            if after_hidden:  # the kernel's counter is the student's to set: "In [777114151...]"
                cell.execution_count = None
            if is_grade(cell) and not is_solution(cell):
                for index, output in enumerate(cell.get("outputs", [])):
                    if output.get("metadata", {}).get(PRINTED_AFTER_HIDDEN) is True:  # marked by the judge
                        cell.outputs[index] = NotebookNode(output_type="stream", name="stdout", text=VISIBLE_PRINT_NOT_SHOWN)
                    elif after_hidden and output.get("output_type") == "error":
                        _keep_only_the_visible_line(output)
                    elif after_hidden and output.get("output_type") == "execute_result":
                        output["execution_count"] = None
                after_hidden = after_hidden or BEGIN_HIDDEN in cell.source
                continue
            if after_hidden and cell.get("outputs"):
                text = OUTPUT_NOT_SHOWN if noted else HIDDEN_INPUTS_NOTE
                cell.outputs = [NotebookNode(output_type="stream", name="stdout", text=text)]
                noted = True
        return nb, resources


def _keep_only_the_visible_line(output: NotebookNode) -> None:
    """An error of a test cell judged after the hidden tests ran: a visible line's failure keeps that line (the
    instructor's source) and not its message; any failure keeps its exception's name only when it is Python's own
    or the judge's."""
    name = str(output.get("ename", ""))
    if name not in JUDGE_ERRORS and builtin_exception_name(name) is None:
        name = "StudentCodeError"
    lines = [str(line) for line in output.get("traceback", [])]
    message = str(output.get("evalue", ""))
    if not lines or not lines[0].startswith("In the test cell, line ") or not _from_the_judge(output):
        if name != output.get("ename"):  # a hidden line's: the judge's brief message, renamed
            output["ename"], output["traceback"] = name, [*lines[:-1], f"{name}: {message}"]
        return
    output["ename"], output["evalue"] = name, VISIBLE_MESSAGE_NOT_SHOWN
    output["traceback"] = [lines[0], f"{name}: {VISIBLE_MESSAGE_NOT_SHOWN}"]


def _from_the_judge(output: NotebookNode) -> bool:
    """An error as the judge (course/grading/judge.py) writes it: the message, after the failing line only when that
    line is visible. It quotes no hidden test, so it stays whole."""
    lines = list(output.get("traceback", []))
    message = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    return (1 <= len(lines) <= 2 and lines[-1] == message
            and (len(lines) == 1 or lines[0].startswith("In the test cell, line ")))


# Output kinds shown as they are: none of them can run a script in the page.
SAFE_OUTPUT_KINDS = frozenset({"text/plain", "image/png", "image/jpeg", "image/gif", "application/json", "text/latex"})
ALLOWED_TAGS = frozenset({*bleach.ALLOWED_TAGS, "p", "br", "hr", "div", "span", "pre", "code", "sub", "sup", "small",
                          "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tfoot", "tr", "th", "td",
                          "caption", "dl", "dt", "dd", "img"})
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto", "data"})  # data: only in an image's src (_image_attribute)
IMAGE_DATA = re.compile(r"data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=\s]*\Z")
# The styles Keras' summaries (rich) and plain formatting use. No position, size or layout: a student's HTML could
# otherwise lie over formgrader's own buttons. No class either, for the same reason.
ALLOWED_STYLES = frozenset({"color", "background-color", "font-weight", "font-style", "font-family", "font-size",
                            "text-decoration", "white-space", "text-align", "line-height", "overflow-x"})


def _image_attribute(tag: str, name: str, value: str) -> bool:
    """An ``img`` keeps its alternative text, and a source in PNG, JPEG or GIF data: none on the web, which
    would tell its owner when and where the page is opened."""
    if name == "src":
        return bool(IMAGE_DATA.match(value))
    return name in ("alt", "title")


def _link_attribute(tag: str, name: str, value: str) -> bool:
    """A link keeps its title, and a target on the web or an e-mail address (never a ``data:`` one)."""
    if name == "href":
        return value.startswith(("https://", "http://", "mailto:", "#"))
    return name == "title"


ALLOWED_ATTRIBUTES = {"*": ["style", "title"], "td": ["colspan", "rowspan", "style"], "th": ["colspan", "rowspan", "style"],
                      "img": _image_attribute, "a": _link_attribute}


# Markdown that can carry a script: a tag, or a link's or image's destination ("[x](javascript:...)", "[x]: ...").
TAG = re.compile(r"<[A-Za-z!/?]")
ACTIVE_MARKDOWN = re.compile(rf"{TAG.pattern}|\]\s*[(:]")


def clean_html(text: str) -> str:
    """``text`` with every tag, attribute, URL scheme and style that could run code escaped or removed."""
    return bleach.clean(text, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, protocols=ALLOWED_PROTOCOLS,
                        css_sanitizer=CSSSanitizer(allowed_css_properties=ALLOWED_STYLES), strip_comments=True)


def clean_markdown(text: str, attachments: dict[str, Any] | None = None) -> str:
    """Markdown as it renders, with nothing that could run code: unchanged when it holds no tag and no link or
    image (:data:`ACTIVE_MARKDOWN`), else rendered as nbconvert renders it (which keeps a ``javascript:``
    link, and embeds the cell's ``attachments``) and cleaned (:func:`clean_html`): HTML is Markdown too, and
    renders the same."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    if not ACTIVE_MARKDOWN.search(text):
        return text
    try:
        rendered = MarkdownWithMath(renderer=IPythonRenderer(escape=False, attachments=attachments or {})).render(text)
    except Exception:  # an image naming an attachment the cell lacks, or Markdown mistune cannot read:
        return f"<pre>{_inert(html.escape(text))}</pre>"  # shown as text (Markdown leaves a <pre> block as it is)
    return _inert(clean_html(rendered))


def _inert(cleaned: str) -> str:
    """Cleaned HTML that stays as it is when read as Markdown again (the notebook's page does): an HTML block
    ends at a blank line, and a link in what follows ("[x](javascript:...)") would be Markdown once more.
    Without ``[``, ``]`` and ``<`` outside tags no link, image or autolink can form."""
    return re.sub(r"[\[\]]", lambda bracket: "&#91;" if bracket.group() == "[" else "&#93;", cleaned)


def _safe_metadata(metadata: Any, data: dict[str, Any]) -> dict[str, Any]:
    """An output's metadata with only what the page needs: integer ``width`` and ``height``, for the output and
    for each of its images. nbconvert writes them into the ``img`` tag unquoted, so a student's
    ``{"width": "1 onerror=..."}`` became an attribute that runs code; everything else is dropped."""
    def sizes(entry: Any) -> dict[str, int]:
        if not isinstance(entry, dict):
            return {}
        return {key: entry[key] for key in ("width", "height")
                if isinstance(entry.get(key), int) and not isinstance(entry.get(key), bool) and 0 < entry[key] < 100_000}

    kept: dict[str, Any] = sizes(metadata)
    for kind in data:
        if kind.startswith("image/") and sizes(metadata.get(kind) if isinstance(metadata, dict) else None):
            kept[kind] = sizes(metadata[kind])
    return kept


def _text(value: object) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


class SanitizeSubmittedHTML(NbGraderPreprocessor):
    """Clean what a submission contributes to the autograded notebook: every code cell's outputs (the
    notebook ran the student's code), and the source of each Markdown or raw cell the student could write
    (locked cells are the instructor's, put back by ``OverwriteCells``). Kinds in
    :data:`SAFE_OUTPUT_KINDS` stay, HTML and Markdown are cleaned (:func:`clean_html`, :func:`clean_markdown`;
    Keras' model summaries are HTML from ``rich``: ``pre`` and ``span``),
    the rest (JavaScript, SVG, widgets) are dropped. Introduced for every assignment's formgrader view."""

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        # Widgets' saved state (ipywidgets writes it here): values the student's code chose, which no page needs.
        nb.metadata.pop("widgets", None)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell: NotebookNode, resources: ResourcesDict, cell_index: int
                        ) -> tuple[NotebookNode, ResourcesDict]:
        if cell.cell_type == "code":
            for output in cell.get("outputs", []):
                data = output.get("data")
                if not isinstance(data, dict):
                    continue
                for kind in list(data):
                    if kind == "text/html":
                        data[kind] = clean_html(_text(data[kind]))
                    elif kind == "text/markdown":
                        data[kind] = clean_markdown(_text(data[kind]))
                    elif kind not in SAFE_OUTPUT_KINDS:
                        del data[kind]
                if not data:
                    data["text/plain"] = "[an output the grader does not show: it could run code in the page]"
                if "metadata" in output:
                    judged = is_grade(cell) and not is_solution(cell)  # a test cell: its outputs are the judge's
                    marked = judged and output["metadata"].get(PRINTED_AFTER_HIDDEN) is True
                    output["metadata"] = _safe_metadata(output["metadata"], data)
                    if marked:
                        output["metadata"][PRINTED_AFTER_HIDDEN] = True
        elif cell.cell_type in ("markdown", "raw") and not is_locked(cell):
            if cell.cell_type == "markdown":
                cell.source = clean_markdown(cell.source, cell.get("attachments"))
            elif TAG.search(cell.source):  # a raw cell: text, unless it holds a tag
                cell.source = clean_html(cell.source)
            for attachment in cell.get("attachments", {}).values():  # an SVG attachment can hold a script
                for kind in [kind for kind in attachment if kind not in SAFE_OUTPUT_KINDS]:
                    del attachment[kind]
        return cell, resources
