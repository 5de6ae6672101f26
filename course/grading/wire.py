"""Values as data between a student's kernel and the judge that grades it (``course grade``).

The judge (course/grading/judge.py) runs the graded test cells in a process of its own;
the names those cells read from the student's notebook arrive from the student's
kernel through this module, as *data only*:

- ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, paths;
- lists, tuples, sets and dicts of those;
- NumPy arrays and scalars (``.npy`` files, read with ``allow_pickle=False``);
- Keras models (``.keras`` files, loaded with ``safe_mode=True`` after their
  configuration has been checked to name only Keras' own classes);
- Keras objects with a configuration (learning-rate schedules, optimizers,
  losses, layers), checked the same way;
- what ``model.fit`` returns (a ``keras.callbacks.History``), as its data: its
  ``params``, ``history`` and ``epoch``, and the model it trained (a model file,
  with the optimizer's state: how many steps it took); rebuilt on the other side
  as a new ``History`` holding them;
- functions, as a reference: calling one on the judge's side asks the kernel to
  run it on the judge's arguments and send the result back as data.

Anything else (a class of the student's own, an object with a rigged ``__eq__``)
does not cross: the test that needs it fails and says why.

A request is a folder holding ``request.json`` (and its argument files); the
kernel runs :func:`handle` on it, which writes ``response.json`` there. One
encoding serves both directions; only the judge's reading matters for grading, so
every reader here treats what it reads as hostile: no links followed, sizes
capped, types checked, nothing unpickled.

Introduced for every graded notebook by ``course grade`` (README, "For instructors").
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import stat
import types
import zipfile
from collections.abc import Callable
from typing import Any

MAX_FILE_BYTES = 2**30
MAX_ITEMS = 100_000
MAX_DEPTH = 32
KERAS_MODULE_PREFIXES = ("keras", "builtins")
# Where model files are written and read while they cross: a folder only this process
# can reach (the judge points ``tempfile`` at a folder the kernel shares, for the tests'
# own temporary files; a model file checked here must not be swapped before it loads).
PRIVATE_TMP: str | None = None


class NotData(Exception):
    """A value that cannot cross between the kernel and the judge as data."""


class Folder:
    """A request folder, read and written without following links (``O_NOFOLLOW``, ``dir_fd``)."""

    def __init__(self, path: str | os.PathLike[str], create: bool = False, prefix: str = "k") -> None:
        self.path = os.fspath(path)
        self.prefix = prefix  # each side names its files apart: "j" the judge, "k" the kernel
        if create:
            os.mkdir(self.path, 0o700)
        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        self._count = 0

    def close(self) -> None:
        os.close(self.fd)

    def new_name(self, suffix: str) -> str:
        self._count += 1
        return f"{self.prefix}{self._count}{suffix}"

    def write(self, name: str, data: bytes) -> None:
        with self.open_new(name) as f:
            f.write(data)

    def open_checked(self, name: str, limit: int = MAX_FILE_BYTES) -> io.BufferedReader:
        """Open a regular file of this folder for reading: no link followed, no FIFO, at most ``limit`` bytes."""
        if not isinstance(name, str) or "/" in name or name in ("", ".", ".."):
            raise NotData(f"bad file name {name!r}")
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=self.fd)
        except OSError as error:
            raise NotData(f"cannot open {name}: {error.strerror}") from None
        f = os.fdopen(fd, "rb")
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            f.close()
            raise NotData(f"{name} is not a regular file")
        if info.st_size > limit:
            f.close()
            raise NotData(f"{name} holds {info.st_size:,} bytes, more than the {limit:,} allowed")
        return f

    def read(self, name: str, limit: int = MAX_FILE_BYTES) -> bytes:
        with self.open_checked(name, limit) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise NotData(f"{name} grew past {limit:,} bytes")
        return data

    def open_new(self, name: str) -> io.BufferedWriter:
        """Create a new file in this folder for writing (never an existing file, never through a link)."""
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=self.fd)
        return os.fdopen(fd, "wb")

    def write_json(self, name: str, value: Any) -> None:
        self.write(name, json.dumps(value).encode())

    def read_json(self, name: str, limit: int = 64 * 2**20) -> Any:
        try:
            return json.loads(self.read(name, limit))
        except ValueError as error:
            raise NotData(f"{name} is not JSON: {error}") from None


def _qualified_name(value: Any) -> str:
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}"


def check_keras_config(config: Any, depth: int = 0) -> None:
    """Refuse a Keras configuration that names a class or function outside Keras.

    ``safe_mode`` already refuses lambdas; this also refuses a ``module`` that would
    import code from anywhere else (a student's own class, or worse)."""
    if depth > 200:
        raise NotData("the Keras configuration is nested too deeply")
    if isinstance(config, dict):
        module = config.get("module")
        if module is not None and not (isinstance(module, str) and module.split(".")[0] in KERAS_MODULE_PREFIXES):
            raise NotData(f"the Keras configuration names code from {module!r}, outside Keras")
        if config.get("registered_name") not in (None, config.get("class_name")) and "module" in config:
            raise NotData(f"the Keras configuration names a registered class {config.get('registered_name')!r}")
        for item in config.values():
            check_keras_config(item, depth + 1)
    elif isinstance(config, list):
        for item in config:
            check_keras_config(item, depth + 1)


def check_keras_file(data: bytes) -> None:
    """Check a ``.keras`` file's configuration before Keras loads it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            with archive.open("config.json") as f:
                config = json.loads(f.read(64 * 2**20))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise NotData(f"not a Keras model file ({type(error).__name__}: {error})") from None
    check_keras_config(config)


class Encoder:
    """Writes values into a folder as files plus a JSON description.

    ``remember(value) -> ref`` keeps a value that stays on this side (a function, a
    model) and names it; the other side can pass the name back."""

    def __init__(self, folder: Folder, remember: Callable[[Any], str] | None = None,
                 reference_of: Callable[[Any], str | None] | None = None) -> None:
        self.folder = folder
        self.remember = remember
        self.reference_of = reference_of or (lambda value: None)
        self.items = 0

    def encode(self, value: Any, depth: int = 0) -> dict[str, Any]:
        import numpy as np

        self.items += 1
        if self.items > MAX_ITEMS or depth > MAX_DEPTH:
            raise NotData("the value is too large or too deeply nested")
        ref = self.reference_of(value)
        if ref is not None:
            return {"t": "ref", "ref": ref}
        if value is None:
            return {"t": "none"}
        if isinstance(value, bool):
            return {"t": "bool", "v": bool(value)}
        if isinstance(value, int) and type(value) is int:
            return {"t": "int", "v": str(value)}
        if type(value) is float:
            return {"t": "float", "v": value}
        if type(value) is complex:
            return {"t": "complex", "v": [value.real, value.imag]}
        if type(value) is str:
            return {"t": "str", "v": value}
        if isinstance(value, pathlib.PurePath):
            return {"t": "path", "v": str(value)}
        if isinstance(value, (np.ndarray, np.generic)):
            return self._array(np.asarray(value), "array" if isinstance(value, np.ndarray) else "scalar")
        if type(value) in (list, tuple, set, frozenset):
            return {"t": type(value).__name__, "items": [self.encode(v, depth + 1) for v in value]}
        if type(value) is dict:
            return {"t": "dict", "items": [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in value.items()]}
        if isinstance(value, types.ModuleType):
            return {"t": "module", "name": value.__name__}
        return self._other(value)

    def _array(self, array: Any, kind: str) -> dict[str, Any]:
        import numpy as np

        if array.dtype.hasobject:
            raise NotData("an array of Python objects (dtype=object)")
        name = self.folder.new_name(".npy")
        with self.folder.open_new(name) as f:
            np.save(f, array, allow_pickle=False)
        return {"t": kind, "file": name}

    def _other(self, value: Any) -> dict[str, Any]:
        module = type(value).__module__.split(".")[0]
        if module in ("tensorflow", "jax", "torch") and hasattr(value, "numpy"):
            return self._array(__import__("numpy").asarray(value.numpy()), "array")
        if module == "keras":
            import keras

            if type(value) is keras.callbacks.History:
                return self._history(value)
            if isinstance(value, keras.Model):
                import tempfile

                with tempfile.TemporaryDirectory(dir=PRIVATE_TMP) as scratch:
                    path = os.path.join(scratch, "model.keras")
                    value.save(path)
                    with open(path, "rb") as f:
                        data = f.read()
                name = self.folder.new_name(".keras")
                self.folder.write(name, data)
                return {"t": "model", "file": name, "ref": self.remember(value) if self.remember else None}
            config = keras.saving.serialize_keras_object(value)
            return {"t": "keras", "config": json.loads(json.dumps(config, default=_json_default)),
                    "ref": self.remember(value) if self.remember else None}
        if callable(value) and not isinstance(value, type) and self.remember is not None:
            return {"t": "function", "ref": self.remember(value), "name": getattr(value, "__name__", "function")}
        raise NotData(f"a {_qualified_name(value)}")

    def _history(self, value: Any) -> dict[str, Any]:
        """A ``History`` as its data; the model it trained crosses as a model does (``None`` when it has none)."""
        model = getattr(value, "_model", None)
        return {"t": "history", "params": self.encode(dict(value.params or {}), 1),
                "history": self.encode(dict(value.history), 1), "epoch": self.encode(list(getattr(value, "epoch", [])), 1),
                "model": self.encode(model, 1)}


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return value.tolist()
    raise TypeError(f"not JSON: {_qualified_name(value)}")


class Decoder:
    """Reads what an :class:`Encoder` wrote; ``resolve(ref)`` turns a reference back into its value,
    ``function(ref, name)`` makes a stand-in for a function of the other side, and ``on_model(value, ref)``
    returns the Keras object to use for one rebuilt here (``value``, or the object ``ref`` gave before)."""

    def __init__(self, folder: Folder, resolve: Callable[[str], Any] | None = None,
                 function: Callable[[str, str], Any] | None = None, on_model: Callable[[Any, str | None], Any] | None = None,
                 safe_keras: bool = True) -> None:
        self.folder = folder
        self.resolve = resolve
        self.function = function
        self.on_model = on_model
        self.safe_keras = safe_keras
        self.items = 0

    def decode(self, desc: Any, depth: int = 0) -> Any:
        self.items += 1
        if self.items > MAX_ITEMS or depth > MAX_DEPTH:
            raise NotData("the value is too large or too deeply nested")
        if not isinstance(desc, dict) or not isinstance(desc.get("t"), str):
            raise NotData("a malformed value")
        kind = desc["t"]
        simple = {"none": lambda: None, "bool": lambda: bool(desc["v"]) if isinstance(desc["v"], bool) else _bad(kind),
                  "int": lambda: int(_typed(desc["v"], str)[:5000]),
                  "float": lambda: float(_typed(desc["v"], (int, float))),
                  "complex": lambda: complex(*(float(_typed(v, (int, float))) for v in _typed(desc["v"], list)[:2])),
                  "str": lambda: _typed(desc["v"], str), "path": lambda: pathlib.Path(_typed(desc["v"], str))}
        if kind in simple:
            return simple[kind]()
        if kind in ("array", "scalar"):
            import numpy as np

            try:
                with self.folder.open_checked(desc["file"]) as f:  # read once, straight into the array
                    array = np.load(f, allow_pickle=False)
            except (ValueError, OSError, EOFError) as error:
                raise NotData(f"an unreadable array ({error})") from None
            if not isinstance(array, np.ndarray):
                raise NotData("not an array")
            if array.dtype.names is not None or array.dtype.kind == "V":  # field names are text the student chose
                raise NotData("an array with named fields or raw bytes (a structured or void dtype)")
            return array if kind == "array" else array[()]
        if kind in ("list", "tuple", "set", "frozenset"):
            items = [self.decode(item, depth + 1) for item in _typed(desc["items"], list)]
            return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[kind](items)
        if kind == "dict":
            return {self.decode(k, depth + 1): self.decode(v, depth + 1) for k, v in _typed(desc["items"], list)}
        if kind == "model":
            model = self._model(self.folder.read(desc["file"]))
            return model if self.on_model is None else self.on_model(model, desc.get("ref"))
        if kind == "keras":
            import keras

            check_keras_config(desc["config"])
            try:
                value = keras.saving.deserialize_keras_object(desc["config"], safe_mode=self.safe_keras)
            except Exception as error:
                raise NotData(f"a Keras object that cannot be rebuilt from its configuration ({error})") from None
            return value if self.on_model is None else self.on_model(value, desc.get("ref"))
        if kind == "history":
            return self._history(desc, depth)
        if kind == "ref" and self.resolve is not None:
            return self.resolve(_typed(desc["ref"], str))
        if kind == "function" and self.function is not None:
            return self.function(_typed(desc["ref"], str), str(desc.get("name", "function")))
        if kind == "module":
            raise NotData(f"the module {desc.get('name')!r}")
        raise NotData(f"a value of kind {kind!r}")

    def _history(self, desc: dict[str, Any], depth: int) -> Any:
        """A new ``keras.callbacks.History`` holding the decoded data; its model is a model or ``None``."""
        import keras

        params, history, epoch, model = (self.decode(desc.get(key), depth + 1) for key in ("params", "history", "epoch", "model"))
        if not (isinstance(params, dict) and isinstance(history, dict) and isinstance(epoch, list)):
            raise NotData("a malformed History")
        if model is not None and not isinstance(model, keras.Model):
            raise NotData("a History whose model is not a Keras model")
        rebuilt = keras.callbacks.History()
        rebuilt.params, rebuilt.history, rebuilt.epoch = params, history, epoch
        if model is not None:
            rebuilt.set_model(model)
        return rebuilt

    def _model(self, data: bytes) -> Any:
        import tempfile

        import keras

        check_keras_file(data)
        with tempfile.TemporaryDirectory(dir=PRIVATE_TMP) as scratch:
            path = os.path.join(scratch, "model.keras")
            with open(path, "wb") as f:
                f.write(data)
            try:
                return keras.saving.load_model(path, safe_mode=self.safe_keras)
            except Exception:
                pass
            try:  # a compile configuration Keras cannot rebuild (a loss of the student's own)
                return keras.saving.load_model(path, compile=False, safe_mode=self.safe_keras)
            except Exception as error:
                raise NotData(f"a Keras model that cannot be loaded ({type(error).__name__}: {error})") from None


def _typed(value: Any, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise NotData("a malformed value")
    return value


def _bad(kind: str) -> Any:
    raise NotData(f"a malformed {kind}")


# ---------------------------------------------------------------------------------------------
# The kernel's side: runs in the student's kernel, on the judge's requests.

_REFERENCES: dict[str, Any] = {}


def _remember(value: Any) -> str:
    for ref, kept in _REFERENCES.items():
        if kept is value:
            return ref
    ref = f"k{len(_REFERENCES) + 1}"
    _REFERENCES[ref] = value
    return ref


def _reference_of(value: Any) -> str | None:
    return None  # the kernel always sends values; only the judge sends references back


def _user_namespace() -> dict[str, Any]:
    from IPython import get_ipython

    shell = get_ipython()
    return shell.user_ns if shell is not None else __import__("__main__").__dict__


def handle(path: str) -> None:
    """Answer the judge's request in folder ``path`` (run in the student's kernel by the grader).

    ``get NAME``: the value of a name of the notebook; ``has NAME``: whether it is
    defined; ``call REF ARGS KWARGS``: call a function the judge received earlier.
    An array or Keras model argument the call changed in place (values, weights) is
    sent back with the answer, for the judge to mirror.
    The answer goes to ``response.json`` beside the request."""
    folder = Folder(path)
    try:
        response = _answer(folder)
        folder.write_json("response.json", response)
    finally:
        folder.close()


def _answer(folder: Folder) -> dict[str, Any]:
    request = folder.read_json("request.json")
    namespace = _user_namespace()
    encoder = Encoder(folder, _remember, _reference_of)
    op = request.get("op")
    if op == "has":
        return {"ok": True, "value": request["name"] in namespace}
    if op == "get":
        if request["name"] not in namespace:
            return {"ok": True, "missing": True}
        return _encoded(encoder, namespace[request["name"]])
    if op == "call":
        decoder = Decoder(folder, resolve=_REFERENCES.__getitem__, safe_keras=False)
        function = _REFERENCES[request["ref"]]
        args = [decoder.decode(a) for a in request["args"]]
        kwargs = {k: decoder.decode(v) for k, v in request["kwargs"].items()}
        before = {i: a.copy() for i, a in enumerate(args) if _is_array(a)}
        weights_before = {i: a.get_weights() for i, a in enumerate(args) if _is_model(a)}  # copies: np.array of each
        try:
            result = function(*args, **kwargs)
        except Exception as error:
            return {"ok": False, "raised": {"type": type(error).__name__, "message": str(error)[:2000]}}
        answer = _encoded(encoder, result)
        changed = {i: a for i, a in enumerate(args) if i in before and not _same_array(before[i], a)}
        changed.update({i: a for i, a in enumerate(args) if i in weights_before and not _same_weights(weights_before[i], a)})
        if changed:
            answer["changed_args"] = {str(i): _encoded(encoder, a).get("value") for i, a in changed.items()}
        return answer
    return {"ok": False, "raised": {"type": "ValueError", "message": f"unknown request {op!r}"}}


def _encoded(encoder: Encoder, value: Any) -> dict[str, Any]:
    try:
        return {"ok": True, "value": encoder.encode(value)}
    except NotData as error:
        return {"ok": True, "notdata": str(error)}
    except Exception as error:  # a model that will not save, a config that will not serialize
        return {"ok": True, "notdata": f"a {_qualified_name(value)} ({type(error).__name__}: {error})"}


def _is_array(value: Any) -> bool:
    import numpy as np

    return isinstance(value, np.ndarray)


def _is_model(value: Any) -> bool:
    import sys

    keras = sys.modules.get("keras")
    return keras is not None and isinstance(value, keras.Model)


def _same_weights(before: list[Any], model: Any) -> bool:
    """Whether ``model`` still holds the weights ``before`` (a model argument trained in place is sent back)."""
    after = model.get_weights()
    return len(before) == len(after) and all(_same_array(a, b) for a, b in zip(before, after))


def _same_array(a: Any, b: Any) -> bool:
    import numpy as np

    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
