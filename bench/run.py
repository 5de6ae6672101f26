"""Benchmark: train every reference solution under each budget and several seeds.

    python bench/run.py [--seeds 1 2 3] [--budgets full grading] [--only 02_mnist_mlp]
    python bench/run.py --render    # RESULTS.md again from results.json, training nothing
    python bench/run.py --budgets grading --only 06_normalization_optimizers --as-graded

``--as-graded`` runs each notebook as nbgrader does (``NBGRADER_EXECUTION`` set): the comparisons
(sweeps, "without BN", ...) are skipped, which no accuracy depends on (each notebook reseeds before
its graded training), so the figures are the same in a fraction of the time; "notebook s" is then
the graded notebook's time.

Executes the *source* notebooks themselves (their reference solutions) with
``COURSE_BUDGET`` and ``COURSE_SEED`` set, then reads back what each training
notebook defines by convention: ``model``, ``test_accuracy``, ``train_seconds``
and ``BUDGET``. Each (notebook, budget) entry is stored in ``bench/results.json`` (replacing
that entry's earlier run), and ``bench/RESULTS.md`` is rendered from all
entries, with the thresholds that the rule below gives.

Threshold rule (each notebook's hidden accuracy test): the lowest test accuracy
over the seeds, minus 0.5 percentage points, rounded down to 0.5 points.
A correct solution then passes with room for seed-to-seed noise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from course import budget as budget_module  # noqa: E402
import machine  # noqa: E402  (bench/machine.py)
RESULTS_JSON = ROOT / "bench" / "results.json"
RESULTS_MD = ROOT / "bench" / "RESULTS.md"
TRAINING_NOTEBOOKS = ["02_mnist_mlp", "03_mnist_cnn", "04_fashion_cnn", "05_cifar_cnn", "05b_cifar_wide",
                      "06_normalization_optimizers", "07_batchnorm_functional", "08_cifar_challenge"]
# Under grading the capstone trains nothing (it loads the submitted model file), and
# its tests use fixed accuracy tiers instead of a threshold from these runs.
FULL_BUDGET_ONLY = {"08_cifar_challenge"}
# Figures the course's seed notebooks reported, and what the field notes measured
# for plain Adam on the same architectures (shared/FIELD-NOTES.md).
SEED_FIGURES = {
    "02_mnist_mlp": "seed SGD 92.24%; plain Adam 97.97%",
    "03_mnist_cnn": "seed SGD 94.33% (val.); plain Adam 98.50%",
    "04_fashion_cnn": "seed 91.91% (val.); plain Adam 90.90%",
    "05_cifar_cnn": "seed 66.20% (val. on test); plain Adam 66.09%; + flip/shift 72.99%",
    "05b_cifar_wide": "seed 67.07% (val.); plain Adam 66.18%; + flip/shift 69.02%",
    "06_normalization_optimizers": "seed's VGG with dropout 0.5 and Adadelta; not re-run in the field notes",
    "07_batchnorm_functional": "seed's model has the wiring bug; not re-run in the field notes",
    "08_cifar_challenge": ("goal: >= 88% within 30 min on 2 CPU cores; earlier references: VGG-style with Adam "
                           "84.6-85.0%, R6 (SGD to 0.2, batch 512, mirror averaging) 86.6-86.9%, R8 (airbench's settings, 20 epochs, "
                           "mirror and 2 shifts) 87.9-88.4%"),
}


def report_code() -> str:
    """A cell that prints the ``BENCH {...}`` line of the notebook's graded model, from what every training
    notebook defines: ``model``, ``test_accuracy``, ``train_seconds`` and ``BUDGET``."""
    return ('import json\nprint("BENCH " + json.dumps({"params": int(model.count_params()), '
            '"test_accuracy": float(test_accuracy), "train_seconds": float(train_seconds), '
            '"epochs": int(BUDGET.epochs), "budget": BUDGET.name}))')


def run_notebook(assignment: str, budget: str, seed: int, as_graded: bool = False) -> dict:
    """Execute one source notebook, without its hidden tests, and return its graded model's reported figures plus
    wall time.

    ``as_graded``: as nbgrader executes it, comparisons skipped (course.budget.compare)."""
    from course.grading.judge import visible_source

    path = ROOT / "source" / assignment / f"{assignment}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        # The hidden tests hold the thresholds this run measures for: a threshold gone stale (a new recipe, a
        # notebook split) must not stop the measurement that renews it. The visible checks still run.
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = visible_source(cell.source)
    notebook.cells.append(new_code_cell(report_code()))
    os.environ.update(COURSE_BUDGET=budget, COURSE_SEED=str(seed))
    if as_graded:
        os.environ[budget_module.NBGRADER_VARIABLE] = "autograde"
    else:
        os.environ.pop(budget_module.NBGRADER_VARIABLE, None)
    start = time.perf_counter()
    # In a folder of its own: a model file beside the source notebook would be loaded under the
    # grading budget instead of training, and the full budget saves one.
    with tempfile.TemporaryDirectory(prefix=f"bench-{assignment}-") as folder:
        NotebookClient(notebook, timeout=3600, kernel_name="python3", resources={"metadata": {"path": folder}}).execute()
    wall = time.perf_counter() - start
    [line] = [l for o in notebook.cells[-1].outputs if o.get("name") == "stdout" for l in o["text"].splitlines() if l.startswith("BENCH ")]
    return {**json.loads(line[len("BENCH "):]), "wall_seconds": wall}


def threshold(lowest: float) -> float:
    """The rule in this module's docstring."""
    return math.floor((lowest - 0.005) * 200) / 200


def render(results: dict[str, dict]) -> str:
    """The Markdown table of every stored entry, in course order."""
    lines = [
        "| notebook | budget | params | epochs | seeds | test acc. mean | min | max | train s | notebook s | threshold | seeds' figures |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key in sorted(results, key=lambda k: (k.split("/")[0], k.split("/")[1] != "full")):
        entry = results[key]
        accuracies = entry["test_accuracy"]
        lines.append(
            f"| {entry['notebook']} | {entry['budget']} | {entry['params']:,} | {entry['epochs']} | "
            f"{', '.join(map(str, entry['seeds']))} | {statistics.mean(accuracies):.2%} | {min(accuracies):.2%} | "
            f"{max(accuracies):.2%} | {statistics.mean(entry['train_seconds']):.0f} | "
            f"{statistics.mean(entry['wall_seconds']):.0f} | "
            f"{'tiers' if entry['notebook'] in FULL_BUDGET_ONLY else f'{threshold(min(accuracies)):.1%}'} | "
            f"{SEED_FIGURES.get(entry['notebook'], '')} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--budgets", nargs="+", default=["full", "grading"], choices=["full", "grading"])
    parser.add_argument("--only", nargs="+", default=TRAINING_NOTEBOOKS, choices=TRAINING_NOTEBOOKS)
    parser.add_argument("--as-graded", action="store_true", help="skip the comparisons, as nbgrader's execution does")
    parser.add_argument("--render", action="store_true", help="only write RESULTS.md again from results.json")
    args = parser.parse_args()
    if args.render:
        args.only = []

    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.is_file() else {}
    for assignment in args.only:
        for budget in args.budgets:
            if budget == "grading" and assignment in FULL_BUDGET_ONLY:
                continue
            runs = []  # one per seed
            for seed in args.seeds:
                runs.append(run_notebook(assignment, budget, seed, args.as_graded))
                print(f"{assignment} {budget} seed {seed}: {runs[-1]['test_accuracy']:.4f} "
                      f"in {runs[-1]['train_seconds']:.0f} s", file=sys.stderr)
            results[f"{assignment}/{budget}"] = {
                "notebook": assignment, "budget": budget, "seeds": args.seeds,
                "params": runs[0]["params"], "epochs": runs[0]["epochs"],
                "test_accuracy": [round(r["test_accuracy"], 4) for r in runs],
                "train_seconds": [round(r["train_seconds"], 1) for r in runs],
                "wall_seconds": [round(r["wall_seconds"], 1) for r in runs],
                "cpus": os.cpu_count(), "machine": machine.describe(), "measured": time.strftime("%Y-%m-%d"), "as_graded": args.as_graded,
            }
            RESULTS_JSON.write_text(json.dumps(results, indent=1) + "\n")
    table = render(results)
    print(table)
    RESULTS_MD.write_text(
        "# Benchmark results\n\n"
        "Written by `make bench` (`python bench/run.py`): each reference solution (the source notebook) "
        "trained under each budget and seed, on the CPUs named in `results.json`, no GPU. "
        "Threshold = lowest test accuracy over the seeds − 0.5 points, rounded down to 0.5; "
        "the notebooks' hidden accuracy tests use it.\n\n" + table + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
