"""Benchmark of `process` at a million alerts against the bare prediction floor.

    python bench/bench_process.py [--alerts 1000000] [--work-dir bench/out]
                                  [--models-dir trained_models] [--repeat 3]

1. generates a sample date with the project's generator (skipped when the work
   dir already holds one of the same size),
2. runs process_batch in a child process (models preloaded, as the RQ worker
   does) and reads that child's peak RSS, so generation does not count,
3. in another child, builds the same feature matrices (untimed) and times the
   three bare Booster.predict calls on them: the floor (and, for information, the
   same calls on the rows in the leaf-path order process predicts in),
4. prints total, floor, their ratio and peak RSS against the goals
   (ratio <= 1.25, peak RSS <= 2.5 GB), and how process's CPU time splits between
   its own Booster.predict calls (metadata.json's prediction_cpu_s) and the rest,
   how much of it was kernel time (page faults), and how many core-seconds each side
   left idle.

Steps 2 and 3 alternate --repeat times; the medians are reported (the ratio is
median process / median floor), with the fastest runs beside them. The load
average before and after is printed: on a shared machine, compare runs made
under similar load only.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from queue import Empty

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DATE = "2025-10-26"
GOAL_RATIO = 1.25
GOAL_RSS_GB = 2.5


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024  # KiB on Linux


def generate(work_dir: Path, alerts: int) -> Path:
    """The sample date under work_dir/input (reused when it already has that many alerts)."""
    import pyarrow.parquet as pq

    from shared.manifest import MANIFEST_FILE

    input_dir = work_dir / "input"
    alerts_file = input_dir / DATE / "alerts.parquet"
    record = input_dir / DATE / MANIFEST_FILE  # older layouts lack it: process hashed inputs
    if (alerts_file.is_file() and record.is_file()
            and pq.read_metadata(alerts_file).num_rows == alerts):
        print(f"reusing {input_dir / DATE} ({alerts} alerts)")
        return input_dir
    from shared.sample import generate_batch, write_input

    started = time.perf_counter()
    write_input(generate_batch("bitcoin", DATE, window_days=7, n_alerts=alerts, seed=1), input_dir)
    print(f"generated {alerts} alerts in {time.perf_counter() - started:.1f}s")
    os.sync()  # the ~650 MB just written would otherwise be flushed during the first runs
    return input_dir


def run_process(input_dir: str, output_dir: str, models_dir: str, queue) -> None:
    """Child: load models, then time process_batch alone; report its timings and peak RSS."""
    from services.processor.models import cpu_threads, load_models
    from services.processor.process import process_batch

    models = load_models(models_dir)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started, cpu = time.perf_counter(), time.process_time()
    metadata = process_batch(input_dir, output_dir, DATE, models=models)
    total, cpu = time.perf_counter() - started, time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_SELF)
    queue.put({"total": total, "cpu": cpu, "rss_gb": _peak_rss_gb(),
               "kernel_s": after.ru_stime - before.ru_stime,
               "page_faults": after.ru_minflt - before.ru_minflt,
               "steps": metadata["timings_s"], "alerts": metadata["alert_count"],
               "predict_cpu": sum(metadata["prediction_cpu_s"].values()),
               "clusters": metadata["cluster_count"], "cores": cpu_threads()})


def run_floor(input_dir: str, models_dir: str, queue) -> None:
    """Child: the same feature matrices, then only the three Booster.predict calls are timed."""
    from services.processor.features import alert_features, cluster_features
    from services.processor.inputs import load_inputs
    from services.processor.models import cpu_threads, load_models

    models = load_models(models_dir)
    inputs = load_inputs(Path(input_dir) / DATE)
    alerts = alert_features(inputs.alerts, inputs.features, inputs.clusters, inputs.money_flows,
                            inputs.links)
    clusters = cluster_features(inputs.clusters, inputs.alerts, inputs.features,
                                inputs.money_flows, inputs.links, alerts)
    times, cpu, grouped = {}, 0.0, {}
    for role, frame in (("alert_scorer", alerts), ("alert_ranker", alerts),
                        ("cluster_scorer", clusters)):
        model = getattr(models, role)
        matrix = model.matrix(frame)
        started, cpu_started = time.perf_counter(), time.process_time()
        model.booster.predict(matrix, num_threads=cpu_threads())
        times[role] = time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        rows = matrix[_process_order(models, role, matrix)]  # untimed
        started = time.perf_counter()
        model.booster.predict(rows, num_threads=cpu_threads())
        grouped[role] = time.perf_counter() - started
    queue.put({"wall": times, "cpu": cpu, "grouped": grouped})


def _process_order(models, role: str, matrix):
    """The row order process predicts in: the alert scorer's leaf paths over all alerts,
    the cluster scorer's within each chunk of clusters."""
    import numpy as np

    from services.processor.models import cpu_threads
    from services.processor.scoring import balanced_rows, path_order

    if role != "cluster_scorer":
        return path_order(models.alert_scorer, matrix)
    model, rows = models.cluster_scorer, balanced_rows(len(matrix), cpu_threads())
    return np.concatenate([start + path_order(model, matrix[start:start + rows])
                           for start in range(0, len(matrix), rows)])


def in_child(target, *args):
    """Run target in a fresh spawned process and return what it put on the queue."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=target, args=(*args, queue))
    child.start()
    while True:  # a child that dies before reporting must not leave us waiting forever
        try:
            result = queue.get(timeout=5)
            break
        except Empty:
            if not child.is_alive():
                sys.exit(f"benchmark child {target.__name__} died with exit code "
                         f"{child.exitcode} before reporting")
    child.join()
    if child.exitcode != 0:
        sys.exit(f"benchmark child {target.__name__} failed with exit code {child.exitcode}")
    return result


def main() -> int:
    """Generate (or reuse) the date, run the children, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--work-dir", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--models-dir", type=Path, default=REPO / "trained_models")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    input_dir = generate(args.work_dir, args.alerts)
    print(f"load average before: {os.getloadavg()}")
    runs, floors = [], []
    for _ in range(args.repeat):
        runs.append(in_child(run_process, str(input_dir), str(args.work_dir / "output"),
                             str(args.models_dir)))
        floors.append(in_child(run_floor, str(input_dir), str(args.models_dir)))
    print(f"load average after:  {os.getloadavg()}")
    report(runs, floors)
    return 0


def _print_cpu_split(runs: list[dict], floors: list[dict], floor: float) -> None:
    """Where process's CPU time goes, against the floor's median CPU time `floor`: its own
    Booster.predict calls (cheaper than the floor's on rows in leaf-path order) and
    everything else."""
    predict = statistics.median(r["predict_cpu"] for r in runs)
    rest = statistics.median(r["cpu"] - r["predict_cpu"] for r in runs)
    print(f"process CPU split    predictions {predict:.1f} s ({predict / floor:.2f} x the "
          f"floor's {floor:.1f} CPU-s) + everything else {rest:.1f} s ({rest / floor:.2f} x) "
          f"(medians)")
    kernel = statistics.median(r["kernel_s"] for r in runs)
    faults = statistics.median(r["page_faults"] for r in runs)
    print(f"process kernel time  {kernel:.1f} s of that CPU time, {faults / 1e6:.2f} M page faults "
          f"(medians; nearly all in the non-prediction work)")
    cores = runs[0]["cores"]
    idle = statistics.median(cores * r["total"] - r["cpu"] for r in runs)
    floor_idle = statistics.median(cores * sum(f["wall"].values()) - f["cpu"] for f in floors)
    print(f"idle core-seconds    process {idle:.1f}, floor {floor_idle:.1f} ({cores} cores x wall - "
          f"CPU, medians): why the wall-time ratio can exceed the CPU-time ratio")


def report(runs: list[dict], floors: list[dict]) -> None:
    """Print median figures (and the fastest runs beside them) against the goals."""
    totals = [r["total"] for r in runs]
    floor_totals = [sum(f["wall"].values()) for f in floors]
    median_run = sorted(runs, key=lambda r: r["total"])[len(runs) // 2]
    median_floor = sorted(floors, key=lambda f: sum(f["wall"].values()))[len(floors) // 2]
    ratio = statistics.median(totals) / statistics.median(floor_totals)
    best_ratio = min(totals) / min(floor_totals)
    floor_cpu = statistics.median(f["cpu"] for f in floors)
    cpu_ratio = statistics.median(r["cpu"] for r in runs) / floor_cpu
    rss = max(r["rss_gb"] for r in runs)
    print(f"\nprocess: {runs[0]['alerts']} alerts, {runs[0]['clusters']} clusters, {len(runs)} runs")
    print("median process steps (s): " + json.dumps(median_run["steps"]))
    print("median bare predict (s):  " + json.dumps({k: round(v, 3)
                                                     for k, v in median_floor["wall"].items()}))
    print(f"total process time   {statistics.median(totals):8.2f} s   (median; fastest "
          f"{min(totals):.2f})")
    print(f"bare predict floor   {statistics.median(floor_totals):8.2f} s   (median; fastest "
          f"{min(floor_totals):.2f})")
    print(f"ratio                {ratio:8.2f}     (median/median; fastest/fastest {best_ratio:.2f}; "
          f"goal <= {GOAL_RATIO}: {'met' if ratio <= GOAL_RATIO else 'NOT met'})")
    print(f"CPU-time ratio       {cpu_ratio:8.2f}     (process CPU s / predict CPU s, all "
          f"threads, medians: less sensitive to other load)")
    _print_cpu_split(runs, floors, floor_cpu)
    grouped = statistics.median(sum(f["grouped"].values()) for f in floors)
    print(f"bare predict, rows in process's order {grouped:.2f} s (median): ratio "
          f"{statistics.median(totals) / grouped:.2f} against it. Informational: LightGBM is "
          f"cheaper on rows grouped by leaf path,\n  which process does; the goal's floor "
          f"is the rows in the file's order.")
    print(f"peak RSS of process  {rss:8.2f} GB  (largest of the runs; goal <= {GOAL_RSS_GB}: "
          f"{'met' if rss <= GOAL_RSS_GB else 'NOT met'})")


if __name__ == "__main__":
    sys.exit(main())
