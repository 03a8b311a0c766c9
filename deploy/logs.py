"""Where the ``fsml`` command's log records go: all of them to a log file, fsml's own warnings to the terminal.

Third-party libraries talk a lot on a normal run (the ONNX exporter's "torchvision is not installed", DVC's "To
track the changes with git", ONNX Runtime's quantisation notes, Python warnings). The terminal shows them only with
``fsml -v``; the log file (``FSML_HOME/logs/fsml.log``) keeps every record at INFO and above either way.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

# The top-level packages of fsml: their warnings reach the terminal without -v.
OWN_PACKAGES = frozenset(
    {"annotation", "crawler", "datastore", "deploy", "evaluation", "fsml", "modelpack", "serving", "training"}
)
LOG_FILE = Path("logs") / "fsml.log"
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_verbose = False


def log_path() -> Path:
    """The CLI's log file under FSML_HOME (read from the environment: the settings need not be loaded)."""
    return Path(os.environ.get("FSML_HOME", ".fsml")).resolve() / LOG_FILE


class OwnRecords(logging.Filter):
    """Pass only the records of fsml's own loggers."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.split(".", 1)[0] in OWN_PACKAGES


class LazyFileHandler(logging.FileHandler):
    """A file handler that makes its folder and file at the first record, so a command that logs nothing (or
    ``fsml --help``) leaves no file behind."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, delay=True, encoding="utf-8")

    def _open(self) -> object:  # type: ignore[override]  # logging's own signature returns a text stream
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()


def setup_logging(verbose: bool | None = None) -> None:
    """Send every record to the log file and, on stderr, fsml's warnings (everything at INFO with ``verbose``).

    Call it again after Django is set up: Django's LOGGING replaces the root logger's handlers. ``verbose`` None
    keeps the last call's choice.
    """
    global _verbose
    if verbose is not None:
        _verbose = verbose
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.INFO)
    to_file = LazyFileHandler(log_path())
    to_file.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(to_file)
    terminal = logging.StreamHandler(sys.stderr)
    terminal.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    terminal.setLevel(logging.INFO if _verbose else logging.WARNING)
    if not _verbose:
        terminal.addFilter(OwnRecords())
    root.addHandler(terminal)
    logging.captureWarnings(True)  # warnings.warn(...) becomes a record of "py.warnings": logged, shown with -v
    # DVC installs its own handlers when it loads; datastore.dvcrepo takes them off and keeps this level (Django's
    # LOGGING sets WARNING): its notes ("To track the changes with git") reach the log file, and the terminal with -v.
    for name in ("dvc", "dvc_data", "dvc_objects"):
        logging.getLogger(name).setLevel(logging.INFO)
    for name in ("onnx_ir", "onnxscript"):  # the ONNX exporter's passes log every step at INFO, as in the settings
        logging.getLogger(name).setLevel(logging.WARNING)
