"""Build a model archive from an export folder: model files, vocabulary and a manifest with checksums."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from modelpack import archive
from modelpack.runtime import TEXT_CODE_FILE
from training.export import VOCAB_FILE, read_export_info


def git_revision(cwd: Path | None = None) -> str:
    """The code's git revision, or "unknown" outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def build_archive(
    export_dir: Path, out_path: Path, name: str, version: int, dataset: str, metrics: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Pack ``export_dir``'s model into ``out_path``. Returns (archive SHA-256, manifest)."""
    info = read_export_info(export_dir)
    manifest = {
        "name": name,
        "version": version,
        "dataset_version": dataset,
        "metrics": metrics,
        "code_revision": git_revision(Path(__file__).parent),
        **info,
    }
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        files = list(info.get("model_files", {"fp32": info["model_file"]}).values())
        files += [f for f in (VOCAB_FILE, TEXT_CODE_FILE) if (export_dir / f).is_file()]
        for file in files:
            shutil.copy2(export_dir / file, staging / file)
        return archive.pack(staging, out_path, manifest)
