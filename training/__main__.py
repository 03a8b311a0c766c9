"""``python -m training CONFIG [key=value ...] --out RUN``: the training script, also under torchrun.

python -m training configs/sentiment-cnn.yaml --out runs/a dataset=sentiment-v1 epochs=4 model.embed_dim=64
torchrun --nproc_per_node 2 -m training configs/sentiment-cnn.yaml --out runs/ddp dataset=sentiment-v1
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from datastore.loader import DatasetError
from training.config import ConfigError, load_config
from training.distributed import init_distributed
from training.run import train_and_export
from training.train import TrainingError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.split("\n")[0])
    parser.add_argument("config", type=Path, nargs="?", help="YAML training config")
    parser.add_argument(
        "overrides", nargs="*", help="key=value pairs that override the config (model.embed_dim=64 for a model key)"
    )
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--resume", action="store_true", help="go on from the run folder's last epoch")
    parser.add_argument("--no-export", action="store_true", help="skip the ONNX export")
    args = parser.parse_intermixed_args(argv)  # overrides may come after --out
    if args.config is not None and "=" in args.config.name and not args.config.is_file():
        args.overrides.insert(0, str(args.config))  # no config file, only overrides
        args.config = None
    try:
        config = load_config(args.config, args.overrides)
        result, report = train_and_export(config, args.out, export_model=not args.no_export, resume=args.resume)
    except (ConfigError, TrainingError, DatasetError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if init_distributed(config.device).main:
        last = result.history[-1] if result.history else {}
        print(json.dumps({"epochs": len(result.history), **last, "export": report.model_file if report else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
