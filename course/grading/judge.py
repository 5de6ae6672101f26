"""The judge: runs a notebook's graded test cells outside the student's kernel (``course grade``).

A student's code can redefine anything in its own interpreter: modules,
builtins, IPython's hooks and AST transformers, the display hook. So the graded
test cells (visible and hidden tests) run here, in a process where no student
code ever runs, started by :class:`course.grading.preprocessors.JudgedExecute` once per
notebook. The names a test reads from the notebook (``preprocess``, ``x_train``,
``model``) arrive from the student's kernel as data (course/grading/wire.py): arrays,
numbers, strings, Keras model files; a function arrives as a stand-in that,
when called, asks the kernel to run it on the test's arguments and sends the
result back as data. The cell's outputs (what it prints, its last value, its
error) are the only ones nbgrader grades.

- Names the test cell defines itself, and the imports of the notebook's locked
  (instructor's) cells, come from here, never from the kernel; so do names that
  start with ``_`` (a test's own helpers) and Python's builtins.
- Hidden tests never reach the kernel: it receives only ``get NAME`` and
  ``call FUNCTION ARGS`` requests.
- An array passed to a student's function and changed there in place is changed
  here too, so "did not modify its input" checks keep working (and a test compares
  a result with a copy of its input taken before the call). So are the weights of a
  Keras model passed to one (``train(model, ...)`` trains the model it is given).
- The model files submitted with the notebook arrive from the grader, read before
  the kernel started, into a folder the kernel cannot reach
  (:data:`course.grading.checks.SUBMITTED_FILES`): deleting or rewriting them from
  the notebook changes nothing the hidden tests measure.

Protocol with the grader (one JSON object per line; stdin from the grader, the
original stdout to it): the grader sends ``init`` (exchange folder, imports,
the submitted model files), then ``cell`` (source) for each graded cell; the judge answers ``result``
(outputs), and meanwhile may send ``kernel`` (a request folder), which the
grader answers with ``reply`` (status).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable

from course.grading import wire

BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
CELL_FILENAME = "<test cell>"


class StudentCodeError(Exception):
    """A function of the notebook raised an exception when the test called it. ``brief``: the message without
    the student's own text (shown for a call from a hidden test, whose inputs that text could quote)."""

    brief = ""


def builtin_exception_name(name: str) -> str | None:
    """``name`` when it is one of Python's own exception classes (``ValueError``, ``NotImplementedError``), else
    ``None``: a class the student named can spell out anything, such as a hidden test's inputs."""
    found = getattr(builtins, name, None) if name.isidentifier() else None
    return name if isinstance(found, type) and issubclass(found, BaseException) else None


def _student_error(name: str) -> type[StudentCodeError]:
    """A :class:`StudentCodeError` named like the exception the student's code raised (``NotImplementedError``
    for an untouched stub), so that the feedback reads as it would in the student's own notebook."""
    if not name.isidentifier():
        return StudentCodeError
    return type(name, (StudentCodeError,), {"__module__": "notebook"})


class KernelUnavailable(Exception):
    """The student's kernel did not answer: it timed out, died, or broke the grader's request."""

    brief = ""


class Link:
    """The judge's side of the conversation with the grader, which relays requests to the kernel."""

    def __init__(self, incoming: Any, outgoing: Any) -> None:
        self.incoming = incoming
        self.outgoing = outgoing

    def send(self, message: dict[str, Any]) -> None:
        self.outgoing.write(json.dumps(message) + "\n")
        self.outgoing.flush()

    def receive(self) -> dict[str, Any] | None:
        line = self.incoming.readline()
        return json.loads(line) if line else None


class KernelFunction:
    """A function of the student's notebook: calling it runs it in the student's kernel."""

    def __init__(self, judge: "Judge", ref: str, name: str) -> None:
        self._judge, self._ref, self.__name__ = judge, ref, name
        self._named_by_test = False  # True once named as the test names it (the kernel chose ``name``)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._judge.call(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<function {self.__name__} of the notebook>"


class KernelNamespace(dict):
    """The test cells' globals: their own names, the instructor's imports, then the kernel's names.

    A name missing here is fetched from the kernel (each cell sees the kernel's
    state afresh), unless it is a builtin or starts with ``_``."""

    def __init__(self, judge: "Judge") -> None:
        super().__init__(__name__="__main__")
        self._judge = judge
        self._fetched: dict[str, Any] = {}

    def begin_cell(self) -> None:
        """Forget values fetched for the last cell: the kernel's state may have changed since."""
        for name, value in self._fetched.items():
            if dict.get(self, name, None) is value:
                dict.__delitem__(self, name)
        self._fetched.clear()

    def _fetchable(self, name: str) -> bool:
        return isinstance(name, str) and not name.startswith("_") and not hasattr(builtins, name)

    def __missing__(self, name: str) -> Any:
        if not self._fetchable(name):
            raise KeyError(name)
        found, value = self._judge.fetch(name)
        if not found:
            raise KeyError(name)
        dict.__setitem__(self, name, value)
        self._fetched[name] = value
        return value

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name: object) -> bool:
        if dict.__contains__(self, name):
            return True
        return isinstance(name, str) and self._fetchable(name) and self._judge.has(name)


def hidden_lines(source: str) -> set[int]:
    """The 1-based numbers of the lines inside hidden-test regions, markers included."""
    hidden, inside = set(), False
    for number, line in enumerate(source.split("\n"), start=1):
        if line.strip() == BEGIN_HIDDEN:
            inside = True
        if inside:
            hidden.add(number)
        if line.strip() == END_HIDDEN:
            inside = False
    return hidden


def visible_source(source: str) -> str:
    """The test cell as students see it: hidden-test regions removed."""
    hidden = hidden_lines(source)
    return "\n".join(line for number, line in enumerate(source.split("\n"), start=1) if number not in hidden).rstrip()


def _config(value: Any) -> Any:
    """A Keras object's configuration and, for a model, its compile configuration; None when it has none
    to compare. A model compiled in the kernel since it last crossed (02's and 04's ``compile_model(model,
    steps)`` returns the model it was given) is then a new object here, with its optimizer and loss."""
    try:
        config = value.get_config()
    except Exception:
        return None
    try:
        return config, value.get_compile_config() if hasattr(value, "get_compile_config") else None
    except Exception:
        return config, None


# What a test cell prints is kept up to this many characters (the rest is dropped as it is printed, so
# printing a student's huge value costs the judge no memory).
MAX_PRINTED = 100_000
# What an error other than a failed assertion says on a hidden test's line.
HIDDEN_ERROR_MESSAGE = "raised on a hidden test's line (its message is left out: it could quote your notebook's values)"


# An output's metadata key marking what a visible line printed after the hidden tests had begun: it can show a value
# the notebook returned, computed from what it kept of their inputs, so the feedback leaves it out
# (course/grading/feedback.py); formgrader shows it.
PRINTED_AFTER_HIDDEN = "course_printed_after_hidden_tests"


class _Printed:
    """What a test cell prints, in order, in chunks marked by whether :data:`PRINTED_AFTER_HIDDEN` applies; only the
    first ``limit`` characters are kept, so printing a huge value costs no memory."""

    def __init__(self, limit: int) -> None:
        self.limit, self.size = limit, 0
        self.chunks: list[tuple[bool, list[str]]] = []

    def add(self, marked: bool, text: str) -> None:
        text = text[:max(0, self.limit - self.size)]
        if not text:
            return
        self.size += len(text)
        if not self.chunks or self.chunks[-1][0] != marked:
            self.chunks.append((marked, []))
        self.chunks[-1][1].append(text)

    def outputs(self) -> list[dict[str, Any]]:
        return [{"output_type": "display_data", "data": {"text/plain": "".join(parts)},
                 "metadata": {PRINTED_AFTER_HIDDEN: True}} if marked else
                {"output_type": "stream", "name": "stdout", "text": "".join(parts)} for marked, parts in self.chunks]


class _Stdout(io.TextIOBase):
    """``sys.stdout`` while a test cell runs: unmarked chunks of :class:`_Printed`."""

    def __init__(self, printed: _Printed) -> None:
        self.printed = printed

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.printed.add(False, text)
        return len(text)


class Judge:
    """Runs test cells in a namespace whose notebook names come from the kernel as data."""

    def __init__(self, link: Link, exchange: Path, submitted: dict[str, str | None] | None = None) -> None:
        self.link = link
        self.exchange = exchange
        # A test's temporary files (01_images writes images for open_as_array to read) must be
        # readable by the kernel: they go to the exchange folder. Model files stay private.
        wire.PRIVATE_TMP = wire.PRIVATE_TMP or tempfile.gettempdir()
        self._has_submitted = bool(submitted)
        if submitted is not None:
            self._keep_submitted(submitted)
        shared = exchange / f"tmp-{secrets.token_hex(8)}"
        shared.mkdir(mode=0o755)  # fails on anything planted there
        tempfile.tempdir = str(shared)
        self.namespace = KernelNamespace(self)
        self._models: dict[int, tuple[Any, str]] = {}
        self._networks: dict[tuple[Any, ...], Any] = {}  # a build function's first network per arguments
        self._after_hidden = False  # a cell with hidden tests has run: the kernel may hold their inputs
        self._by_ref: dict[str, Any] = {}

    def _keep_submitted(self, submitted: dict[str, str | None]) -> None:
        """Write the submitted model files (name -> base64; ``None``: past the grader's limits) where only the
        judge reads them, and point
        :data:`course.grading.checks.SUBMITTED_FILES` at them."""
        import base64

        from course.grading import checks

        private = Path(tempfile.mkdtemp(prefix="course-submitted-", dir=wire.PRIVATE_TMP))
        kept: dict[str, Path | None] = {}
        for name, data in submitted.items():
            if not isinstance(name, str) or Path(name).name != name or name.startswith("."):
                continue
            if data is None:  # submitted, but past the grader's limits
                kept[name] = None
                continue
            (private / name).write_bytes(base64.b64decode(data))
            kept[name] = private / name
        checks.SUBMITTED_FILES = kept

    # -- the kernel, through the grader
    def _request(self, build: Callable[[wire.Folder], dict[str, Any]]) -> tuple[wire.Folder, dict[str, Any]]:
        path = self.exchange / f"r{secrets.token_hex(8)}"
        folder = wire.Folder(path, create=True, prefix="j")
        try:
            folder.write_json("request.json", build(folder))
            self.link.send({"op": "kernel", "dir": str(path)})
            reply = self.link.receive()
            if reply is None:
                raise SystemExit(0)  # the grader has gone
            if reply.get("status") != "ok":
                error = KernelUnavailable(reply.get("message") or "the notebook's kernel did not answer")
                # A time limit or a crash is the grader's text; an error answering quotes the kernel's.
                error.brief = "the notebook's kernel could not answer" if reply.get("status") == "error" else str(error)
                raise error
            return folder, folder.read_json("response.json")
        except BaseException:
            self._discard(folder)
            raise

    def _discard(self, folder: wire.Folder) -> None:
        folder.close()
        shutil.rmtree(folder.path, ignore_errors=True)

    def _decoder(self, folder: wire.Folder) -> wire.Decoder:
        return wire.Decoder(folder, function=lambda ref, name: KernelFunction(self, ref, name), on_model=self._remember)

    def _remember(self, value: Any, ref: str | None) -> Any:
        """The judge's object for a Keras object the kernel sent under ``ref``.

        The kernel gives one object one reference, so an object sent again is the judge's
        earlier object, with the weights it has now: a test's ``is`` (``build_mlp() is not
        model``: a new model each call) means here what it means in the notebook."""
        if ref is None:
            return value
        earlier = self._by_ref.get(ref)
        if earlier is not None and type(earlier) is type(value) and _config(earlier) == _config(value):
            try:
                earlier.set_weights(value.get_weights())
                return earlier
            except Exception:  # an object without weights to copy: the new one stands in
                pass
        self._by_ref[ref] = value
        self._models[id(value)] = (value, ref)
        return value

    def _reference_of(self, value: Any) -> str | None:
        if isinstance(value, KernelFunction):
            return value._ref
        kept = self._models.get(id(value))
        return kept[1] if kept is not None and kept[0] is value else None

    def has(self, name: str) -> bool:
        folder, response = self._request(lambda folder: {"op": "has", "name": name})
        self._discard(folder)
        return response.get("value") is True

    def fetch(self, name: str) -> tuple[bool, Any]:
        folder, response = self._request(lambda folder: {"op": "get", "name": name})
        try:
            if response.get("missing") is True:
                return False, None
            if "notdata" in response:
                raise wire.NotData(f"`{name}` is {str(response['notdata'])[:500]}, which the grader cannot read as data: "
                                   "keep NumPy arrays, numbers, strings, lists, dicts or Keras models in it")
            value = self._decoder(folder).decode(response.get("value"))
            if isinstance(value, KernelFunction):
                value.__name__ = name  # messages name it as the test does
                value._named_by_test = True
            return True, value
        finally:
            self._discard(folder)

    def call(self, function: KernelFunction, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        def build(folder: wire.Folder) -> dict[str, Any]:
            encoder = wire.Encoder(folder, reference_of=self._reference_of)
            try:
                return {"op": "call", "ref": function._ref, "args": [encoder.encode(a) for a in args],
                        "kwargs": {str(k): encoder.encode(v) for k, v in kwargs.items()}}
            except wire.NotData as error:
                raise TypeError(f"the test passes {error} to {function.__name__}, which cannot cross as data") from None

        folder, response = self._request(build)
        called = f"{function.__name__}()" if function._named_by_test else "a function of the notebook"  # for ``brief``
        try:
            if response.get("ok") is not True:
                raised = response.get("raised") or {}
                kind = str(raised.get("type"))[:100]
                error = _student_error(kind)(f"{function.__name__}() raised {kind}: {str(raised.get('message'))[:2000]}")
                error.brief = f"{called} raised {builtin_exception_name(kind) or 'an exception'}"[:200]
                raise error
            if "notdata" in response:
                error = wire.NotData(f"{function.__name__}() returned {str(response['notdata'])[:500]}, which the grader "
                                     "cannot read as data: return NumPy arrays, numbers, strings, lists, tuples, dicts or Keras models")
                error.brief = f"{called} returned a value the grader cannot read as data"
                raise error
            decoder = self._decoder(folder)
            try:
                result = decoder.decode(response.get("value"))
                for index, desc in (response.get("changed_args") or {}).items():
                    self._write_back(args, index, decoder, desc)
            except wire.NotData as error:  # what the judge refused of it, such as a structured dtype's field names
                error.brief = f"{called} returned a value the grader cannot read as data"
                raise
            self._check_same_network(function, args, kwargs, result)
            return result
        finally:
            self._discard(folder)

    def _check_same_network(self, function: KernelFunction, args: tuple[Any, ...], kwargs: dict[str, Any],
                            result: Any) -> None:
        """A build function must build the same network each time a test calls it with the same arguments: one
        that builds the right one for the build tests and, later, the network of a model file from elsewhere for
        the accuracy test (whose file must hold what the build function builds) fails here."""
        keras = sys.modules.get("keras")
        simple = (bool, int, float, str, type(None))
        if keras is None or not isinstance(result, keras.Model) or not function._named_by_test \
                or not all(isinstance(value, simple) for value in (*args, *kwargs.values())):
            return
        from course.grading import checks

        key = (function.__name__, tuple(map(repr, args)), tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
        built = checks.architecture(result)
        first = self._networks.setdefault(key, built)
        if first != built:
            raise AssertionError(f"{function.__name__}() built a different network than when an earlier test called it "
                                 "the same way: a build function must build the same network every time")

    def _write_back(self, args: tuple[Any, ...], index: str, decoder: wire.Decoder, desc: Any) -> None:
        """Mirror an in-place change the student's function made to an argument: an array's values, a Keras
        model's weights (a ``train(model, ...)`` trains the model it is given), when the shapes still match."""
        import numpy as np

        original = args[int(index)] if index.isdigit() and int(index) < len(args) else None
        keras = sys.modules.get("keras")
        is_model = keras is not None and isinstance(original, keras.Model)
        if not (isinstance(original, np.ndarray) or is_model) or desc is None:
            return
        changed = decoder.decode(desc)
        if isinstance(changed, np.ndarray) and isinstance(original, np.ndarray):
            if changed.shape == original.shape and original.flags.writeable:
                original[...] = changed.astype(original.dtype, copy=False)
        elif is_model and isinstance(changed, keras.Model):
            weights, wanted = changed.get_weights(), original.get_weights()
            if len(weights) == len(wanted) and all(w.shape == v.shape for w, v in zip(weights, wanted)):
                original.set_weights(weights)

    # -- running cells
    def setup(self, imports: list[str]) -> list[str]:
        """Run the instructor's import statements; return the ones that failed.

        Keras comes first, without its optional extras (:func:`import_keras_lean`), when the statements import it or
        TensorFlow or model files were submitted: the tests will read models."""
        if self._has_submitted or imports_model_libraries(imports):
            import_keras_lean()
        failed = []
        for statement in imports:
            try:
                exec(compile(statement, "<imports>", "exec"), self.namespace)
            except Exception as error:
                failed.append(f"{statement}: {type(error).__name__}: {error}")
        return failed

    def run_cell(self, source: str) -> list[dict[str, Any]]:
        """Run one test cell; return its outputs in nbformat's form."""
        self.namespace.begin_cell()
        printed = _Printed(MAX_PRINTED)
        hidden = hidden_lines(source)
        # Prints of visible lines once hidden tests have run (in an earlier cell, or earlier in this one) are marked.
        first_hidden = 0 if self._after_hidden else min(hidden, default=None)
        self.namespace["print"] = self._print_function(printed, hidden, first_hidden)
        outputs: list[dict[str, Any]] = []
        value = None
        try:
            tree = ast.parse(source, CELL_FILENAME)
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            with contextlib.redirect_stdout(_Stdout(printed)):
                exec(compile(tree, CELL_FILENAME, "exec"), self.namespace)
                if last is not None:
                    value = eval(compile(ast.Expression(last.value), CELL_FILENAME, "eval"), self.namespace)
            error = None
        except Exception as caught:  # the test failed: that is the verdict
            error = caught
        outputs += printed.outputs()
        if error is not None:
            outputs.append(self._error_output(error, source))
        elif value is not None:
            outputs.append({"output_type": "execute_result", "execution_count": None, "metadata": {},
                            "data": {"text/plain": repr(value)[:10_000]}})
        self._after_hidden = self._after_hidden or bool(hidden)  # after this cell's outputs: its errors came first
        return outputs

    @staticmethod
    def _print_function(printed: _Printed, hidden: set[int], first_hidden: int | None) -> Callable[..., None]:
        """``print`` for a test cell: what a visible line prints after ``first_hidden`` is marked (:class:`_Printed`)."""
        def test_print(*values: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None,
                       flush: bool = False) -> None:
            if file is not None:
                builtins.print(*values, sep=sep, end=end, file=file, flush=flush)
                return
            text = io.StringIO()
            builtins.print(*values, sep=sep, end=end, file=text)
            caller = sys._getframe(1)
            line = caller.f_lineno if caller.f_code.co_filename == CELL_FILENAME else None
            printed.add(first_hidden is not None and line is not None and line not in hidden and line > first_hidden,
                        text.getvalue())

        return test_print

    def _error_output(self, error: BaseException, source: str) -> dict[str, Any]:
        """The error as students see it: its message, and the failing line only when it is a visible one."""
        name = type(error).__name__
        message = str(error)
        if isinstance(error, KeyError) and not message:
            message = repr(error.args[0]) if error.args else ""
        message = message[:10_000]
        hidden = hidden_lines(source)
        frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == CELL_FILENAME]
        if (not frames or frames[-1].lineno in hidden) and isinstance(error, (StudentCodeError, wire.NotData, KernelUnavailable)):
            # A hidden test's call: what the student's code raised, returned or said could quote the hidden inputs.
            message = getattr(error, "brief", "") or "the notebook's kernel did not answer"
            if isinstance(error, StudentCodeError):  # named as the student's class was, unless it is Python's own
                name = builtin_exception_name(name) or StudentCodeError.__name__
        elif isinstance(error, StudentCodeError) and self._after_hidden:
            # A visible line's call after the hidden tests ran: which of Python's exceptions the student's code
            # raised is a choice it could make from what it kept of their inputs (the message says which).
            name = StudentCodeError.__name__
        elif (not frames or frames[-1].lineno in hidden) and not isinstance(error, AssertionError):
            # NumPy's or Python's own words on a value the notebook returned (a dtype's field names, a string, a
            # shape) could quote what it kept of the hidden inputs: the test's own assertions alone speak.
            message = HIDDEN_ERROR_MESSAGE
        lines = [f"{name}: {message}"]
        if frames and frames[-1].lineno not in hidden:
            line = source.split("\n")[frames[-1].lineno - 1].strip()
            lines.insert(0, f"In the test cell, line {frames[-1].lineno}: {line[:1000]}")
        return {"output_type": "error", "ename": name, "evalue": message, "traceback": lines}


# What ``import keras`` imports when it is installed, for Keras' scikit-learn wrappers and its plotting utilities:
# SciPy comes with scikit-learn. The judge uses neither, and they cost about 1.3 s of CPU per judge (`import keras`
# measured at 4.1-4.6 s of CPU, 2.9-3.1 s without them, on CI's machine).
KERAS_EXTRAS = ("sklearn", "scipy", "matplotlib")
MODEL_LIBRARIES = frozenset({"keras", "tensorflow"})


def imports_model_libraries(imports: list[str]) -> bool:
    """Whether any of the import statements imports Keras or TensorFlow."""
    for statement in imports:
        tree = _parsed(statement)
        for node in tree.body if tree is not None else ():
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                modules = [node.module or ""]
            else:
                continue
            if any(module.split(".")[0] in MODEL_LIBRARIES for module in modules):
                return True
    return False


def import_keras_lean() -> None:
    """Import Keras with :data:`KERAS_EXTRAS` hidden from it: its wrappers and plotting then go without them,
    and a test that imports one of them later gets it as usual. Nothing when Keras is already imported."""
    if "keras" in sys.modules:
        return
    hidden = [name for name in KERAS_EXTRAS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # `import name` raises ImportError
    try:
        import keras  # noqa: F401
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]


def main() -> None:
    """``python -I -m course.grading.judge``: serve the grader on stdin and the original stdout."""
    protocol_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else written to stdout (libraries, C code) goes to the log instead
    sys.stdout = os.fdopen(1, "w", buffering=1)
    os.environ["COURSE_JUDGE"] = "1"
    os.environ.setdefault("MPLBACKEND", "Agg")
    link = Link(sys.stdin, protocol_out)
    judge: Judge | None = None
    while (message := link.receive()) is not None:
        if message["op"] == "init":
            judge = Judge(link, Path(message["exchange"]), message.get("submitted"))
            link.send({"op": "ready", "failed_imports": judge.setup(message.get("imports", []))})
        elif message["op"] == "cell" and judge is not None:
            link.send({"op": "result", "outputs": judge.run_cell(message["source"])})
        elif message["op"] == "exit":
            break


def _parsed(source: str) -> ast.Module | None:
    """A cell's syntax tree, IPython magics read as ``pass``; ``None`` when it is not Python."""
    cleaned = "\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass", line) for line in source.split("\n"))
    try:
        return ast.parse(cleaned)
    except SyntaxError:
        return None


def _bound_names(statement: ast.Import | ast.ImportFrom) -> set[str] | None:
    """The names an import statement binds (``None`` for ``from x import *``)."""
    if any(alias.name == "*" for alias in statement.names):
        return None
    return {alias.asname or alias.name.split(".")[0] for alias in statement.names}


def notebook_imports(sources: list[str], tests: list[str] | None = None) -> list[str]:
    """The top-level ``import`` statements of the given cells (IPython magics and the rest skipped).

    With ``tests`` (the graded test cells' sources), only the statements binding a name those cells use:
    the judge need not import what no test reads (01's ``sklearn.datasets`` and ``matplotlib``: about 1.5 s of
    CPU for each submission). A test cell that is not Python keeps every statement."""
    used: set[str] | None = None
    if tests is not None:
        used = set()
        for source in tests:
            tree = _parsed(source)
            if tree is None:
                used = None
                break
            used |= {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    statements = []
    for source in sources:
        tree = _parsed(source)
        if tree is None:
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                bound = _bound_names(node)
                if used is None or bound is None or bound & used:
                    statements.append(ast.unparse(node))
    return statements


if __name__ == "__main__":
    main()
