"""The road as a DVC pipeline: snapshot -> train -> export -> evaluate, in a research repository of its own.

``fsml pipeline init DIR`` makes DIR a git + DVC repository holding ``dvc.yaml`` (the stages, each an
``fsml`` command) and ``params.yaml`` (what the stages read). Then, inside DIR:

- ``dvc repro`` runs the stages whose params or inputs changed (a new dataset name re-snapshots and
  retrains; a new epoch count retrains, re-exports and re-evaluates; nothing changed, nothing runs);
- ``dvc metrics show`` / ``dvc metrics diff`` compare the training and evaluation metrics between runs
  (commit after each run you want to compare against).

The research repository is not the data repository: a stage that runs DVC on the repository that
``dvc repro`` holds would wait for its lock. Dataset versions stay in the data repository (FSML_HOME/data
or the one given) and are read through the loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from scmrepo.git import Git

from datastore.dvcrepo import dvc_repo_class

DVC_YAML: dict[str, Any] = {
    "stages": {
        "snapshot": {
            "cmd": "fsml dataset snapshot ${dataset.project} --name ${dataset.name} --if-missing "
            "--info data/dataset.json",
            "params": ["dataset"],
            "outs": [{"data/dataset.json": {"cache": False}}],
        },
        "train": {
            "cmd": "fsml train ${dataset.name} --out runs/train --data-repo ${data_repo} --epochs ${train.epochs} "
            "--seed ${train.seed} --no-export --metrics metrics/train.json",
            "deps": ["data/dataset.json"],
            "params": ["train"],
            "outs": ["runs/train"],
            "metrics": [{"metrics/train.json": {"cache": False}}],
        },
        "export": {
            "cmd": "fsml export runs/train --out runs/export",
            "deps": ["runs/train"],
            "outs": ["runs/export"],
        },
        "evaluate": {
            "cmd": "fsml evaluate runs/export --dataset ${dataset.name} --split ${evaluate.split} "
            "--data-repo ${data_repo} --metrics metrics/evaluate.json",
            "deps": ["runs/export", "data/dataset.json"],
            "params": ["evaluate"],
            "metrics": [{"metrics/evaluate.json": {"cache": False}}],
        },
    }
}


def init_pipeline(folder: Path, project: str, dataset: str, data_repo: str, epochs: int = 8, seed: int = 0) -> Path:
    """Create the research repository with its pipeline and first commit; returns ``folder``.

    Raises:
        FileExistsError: ``folder`` already holds a dvc.yaml.
    """
    folder = folder.resolve()
    if (folder / "dvc.yaml").exists():
        raise FileExistsError(f"{folder / 'dvc.yaml'} exists; edit its params.yaml instead")
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / ".git").exists():
        Git.init(str(folder))
    params = {
        "data_repo": str(Path(data_repo).resolve()) if "://" not in data_repo else data_repo,
        "dataset": {"project": project, "name": dataset},
        "train": {"epochs": epochs, "seed": seed},
        "evaluate": {"split": "test"},
    }
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    header = "# fsml's road as a DVC pipeline (fsml pipeline init): `dvc repro`, then `dvc metrics diff`.\n"
    (folder / "dvc.yaml").write_text(header + yaml.safe_dump(DVC_YAML, sort_keys=False, width=200))
    repo_class = dvc_repo_class()  # DVC's chatter ("Initialized DVC repository") goes to the log
    repo = repo_class.init(str(folder)) if not (folder / ".dvc").is_dir() else repo_class(str(folder))
    try:
        names = ["params.yaml", "dvc.yaml", ".dvc/config", ".dvc/.gitignore", ".dvcignore"]
        repo.scm.add([str(folder / n) for n in names if (folder / n).exists()])
        repo.scm.commit("fsml pipeline: snapshot -> train -> export -> evaluate")
    finally:
        repo.close()
    return folder
