"""Benchmark of `process` at a million alerts against the bare prediction floors.

    python bench/bench_process.py [--alerts 1000000] [--work-dir bench/out]
                                  [--models-dir trained_models] [--repeat 3]

1. generates a sample date with the project's generator (skipped when the work
   dir already holds one of the same size) and compiles the models into
   work-dir/compiled (skipped when cached: process runs as a warm worker does),
2. runs process_batch in a child process (models preloaded on PREDICT_ENGINE's
   default, compiled trees, as the RQ worker does) and reads that child's peak RSS,
   so generation does not count,
3. in another child, builds the same feature matrices (untimed) and times the
   three bare LightGBM Booster.predict calls on them (the LightGBM floor) and the
   three bare compiled predictions (the compiled floor), all cores each; it also
   compares every score process published with LightGBM's prediction,
4. prints total, both floors, the ratios and peak RSS against the goals
   (process <= 0.5 x the LightGBM floor, peak RSS <= 2.5 GB, max |score - LightGBM|
   <= 1e-9), the engine of each model, and how process's CPU time splits between
   its predictions (metadata.json's prediction_cpu_s) and the rest, how much of it
   was kernel time (page faults), and how many core-seconds each side left idle,
5. in a third child, the bare I/O floor: only decoding the input columns process
   reads and encoding its three result files and three bodies from the published
   results (no checks, joins or features). With the compiled floor's CPU time it
   bounds any process on this host from below (both spread perfectly over the cores).

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
GOAL_RATIO = 0.5  # of the LightGBM floor
GOAL_RSS_GB = 2.5
GOAL_DIFF = 1e-9
ROLES = ("alert_scorer", "alert_ranker", "cluster_scorer")


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


def compile_models(models_dir: Path, cache_dir: Path) -> dict:
    """Compile the models into cache_dir where missing (untimed: a worker does it at start)."""
    from services.processor.predictor import warm_cache

    engines = warm_cache(models_dir, cache_dir)
    print("engines: " + json.dumps(engines))
    return engines


def run_process(input_dir: str, output_dir: str, models_dir: str, cache_dir: str, queue) -> None:
    """Child: load the models on compiled trees, then time process_batch alone; report its
    timings and peak RSS."""
    from services.processor.models import cpu_threads, load_models
    from services.processor.predictor import COMPILED
    from services.processor.process import process_batch

    models = load_models(models_dir, engine=COMPILED, cache_dir=cache_dir)
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
               "engines": {k: v["engine"] for k, v in metadata["predict_engines"].items()},
               "clusters": metadata["cluster_count"], "cores": cpu_threads()})


def _timed(predict, *args, **kwargs) -> tuple[float, float, object]:
    """(wall s, CPU s, result) of one call."""
    started, cpu = time.perf_counter(), time.process_time()
    result = predict(*args, **kwargs)
    return time.perf_counter() - started, time.process_time() - cpu, result


def _published(output_dir: Path, inputs) -> dict:
    """process's published scores by model, in the input's row order."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from shared import storage

    folder = output_dir / DATE
    ranked = pq.read_table(folder / storage.ALERTS_RANKED, columns=["alert_id", "score"])
    at = pc.index_in(inputs.alerts.column("alert_id"), value_set=ranked.column("alert_id"))
    return {"alert_scorer": pq.read_table(folder / storage.ALERTS_SCORED,
                                          columns=["score"]).column(0).to_numpy(),
            "alert_ranker": ranked.column("score").take(at).to_numpy(),
            "cluster_scorer": pq.read_table(folder / storage.CLUSTERS_SCORED,
                                            columns=["score"]).column(0).to_numpy()}


def run_floor(input_dir: str, output_dir: str, models_dir: str, cache_dir: str, queue) -> None:
    """Child: the same feature matrices, then only the bare predictions are timed: LightGBM's
    Booster.predict and the compiled models', all cores each. Also the largest difference
    between a score process published and LightGBM's."""
    import numpy as np

    from services.processor.features import alert_features, cluster_features
    from services.processor.inputs import load_inputs
    from services.processor.models import cpu_threads, load_models
    from services.processor.outputs import sigmoid
    from services.processor.predictor import COMPILED

    models = load_models(models_dir, engine=COMPILED, cache_dir=cache_dir)
    inputs = load_inputs(Path(input_dir) / DATE)
    alerts = alert_features(inputs.alerts, inputs.features, inputs.clusters, inputs.money_flows,
                            inputs.links)
    clusters = cluster_features(inputs.clusters, inputs.alerts, inputs.features,
                                inputs.money_flows, inputs.links, alerts)
    published = _published(Path(output_dir), inputs)
    out = {"wall": {}, "cpu": 0.0, "compiled_wall": {}, "compiled_cpu": 0.0, "max_diff": {}}
    for role, frame in zip(ROLES, (alerts, alerts, clusters)):
        model = getattr(models, role)
        matrix = model.matrix(frame)  # float64 of the float32 features (untimed)
        rows = matrix.astype(np.float32)  # LightGBM's input as process gave it before
        wall, cpu, lightgbm = _timed(model.booster.predict, rows, num_threads=cpu_threads())
        out["wall"][role], out["cpu"] = wall, out["cpu"] + cpu
        wall, cpu, _ = _timed(model.engine.forest.predict, matrix, n_jobs=cpu_threads())
        out["compiled_wall"][role], out["compiled_cpu"] = wall, out["compiled_cpu"] + cpu
        expected = sigmoid(lightgbm) if role == "alert_ranker" else lightgbm
        out["max_diff"][role] = float(np.abs(np.asarray(published[role]) - expected).max())
        del matrix, rows
    queue.put(out)


def _read_columns(folder: Path, name: str, wanted) -> "pa.Table":
    """The columns of one input file that process reads (all when wanted is None)."""
    import pyarrow.parquet as pq

    path = folder / name
    if wanted is None:
        return pq.read_table(path)
    names = set(pq.read_schema(path).names)
    return pq.read_table(path, columns=[c for c in wanted if c in names])


def run_bare_io(input_dir: str, output_dir: str, queue) -> None:
    """Child: CPU seconds of decoding what process reads and encoding what it writes, nothing
    else (no checks, joins, features or predictions), with process's writer options."""
    import tempfile

    import pyarrow.parquet as pq

    from services.processor import inputs, outputs
    from services.processor.memory import share_one_allocator
    from shared import bodies, contract, storage

    share_one_allocator()
    folder, published = (Path(input_dir) / DATE).resolve(), Path(output_dir) / DATE
    envelope = json.loads((published / storage.METADATA).read_text())
    scored = {name: pq.read_table(published / name) for name in
              (storage.ALERTS_SCORED, storage.ALERTS_RANKED, storage.CLUSTERS_SCORED)}
    cpu = time.process_time()
    tables = {"alerts": _read_columns(folder, contract.ALERTS_FILE, None),
              "features": _read_columns(folder, contract.FEATURES_FILE,
                                         ("address", *inputs.FEATURE_COLUMNS)),
              "clusters": _read_columns(folder, contract.CLUSTERS_FILE, None),
              "flows": _read_columns(folder, contract.MONEY_FLOWS_FILE,
                                     ("from_address", "to_address", *inputs.FLOW_COLUMNS))}
    decode = time.process_time() - cpu
    with tempfile.TemporaryDirectory(dir=output_dir) as tmp:
        cpu = time.process_time()
        for name, table in scored.items():
            pq.write_table(table, Path(tmp) / name, **outputs.PARQUET_OPTIONS)
        for kind in bodies.LIST_KINDS:
            table = scored[kind.file].select(list(kind.columns))
            bodies.write_list(Path(tmp), kind, table, envelope, envelope["model_versions"].get(
                kind.model_key, ""))
        encode = time.process_time() - cpu
    del tables
    queue.put({"decode_cpu": decode, "encode_cpu": encode})


def _compile_child(models_dir: str, cache_dir: str, queue) -> None:
    queue.put(compile_models(Path(models_dir), Path(cache_dir)))


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
    cache_dir, output_dir = args.work_dir / "compiled", args.work_dir / "output"
    in_child(_compile_child, str(args.models_dir), str(cache_dir))
    print(f"load average before: {os.getloadavg()}")
    runs, floors, bare = [], [], []
    for _ in range(args.repeat):
        runs.append(in_child(run_process, str(input_dir), str(output_dir), str(args.models_dir),
                             str(cache_dir)))
        floors.append(in_child(run_floor, str(input_dir), str(output_dir), str(args.models_dir),
                               str(cache_dir)))
        bare.append(in_child(run_bare_io, str(input_dir), str(output_dir)))
    print(f"load average after:  {os.getloadavg()}")
    report(runs, floors)
    _print_lower_bound(runs, floors, bare)
    return 0


def _print_cpu_split(runs: list[dict], floors: list[dict], floor: float) -> None:
    """Where process's CPU time goes, against the LightGBM floor's median CPU time `floor`:
    its own predictions and everything else."""
    predict = statistics.median(r["predict_cpu"] for r in runs)
    rest = statistics.median(r["cpu"] - r["predict_cpu"] for r in runs)
    compiled = statistics.median(f["compiled_cpu"] for f in floors)
    print(f"process CPU split    predictions {predict:.1f} s (the compiled floor's {compiled:.1f} "
          f"CPU-s; {predict / floor:.2f} x the LightGBM floor's {floor:.1f}) + everything else "
          f"{rest:.1f} s ({rest / floor:.2f} x) (medians)")
    kernel = statistics.median(r["kernel_s"] for r in runs)
    faults = statistics.median(r["page_faults"] for r in runs)
    print(f"process kernel time  {kernel:.1f} s of that CPU time, {faults / 1e6:.2f} M page faults "
          f"(medians)")
    cores = runs[0]["cores"]
    idle = statistics.median(cores * r["total"] - r["cpu"] for r in runs)
    print(f"idle core-seconds    process {idle:.1f} ({cores} cores x wall - CPU, median)")


def _print_lower_bound(runs: list[dict], floors: list[dict], bare: list[dict]) -> None:
    """The least any process can take here: bare I/O plus the compiled predictions, spread
    perfectly over the cores, against the LightGBM floor."""
    decode = statistics.median(b["decode_cpu"] for b in bare)
    encode = statistics.median(b["encode_cpu"] for b in bare)
    compiled = statistics.median(f["compiled_cpu"] for f in floors)
    floor = statistics.median(sum(f["wall"].values()) for f in floors)
    cores = runs[0]["cores"]
    bound = (decode + encode + compiled) / cores
    print(f"bare I/O floor       decode {decode:.1f} + encode {encode:.1f} CPU-s (the input columns "
          f"process reads; its three files and three bodies)")
    print(f"lower bound          {bound:8.2f} s   (bare I/O + compiled floor CPU-s over {cores} "
          f"cores, no checks/joins/features) = {bound / floor:.2f} x the LightGBM floor")


def report(runs: list[dict], floors: list[dict]) -> None:
    """Print median figures (and the fastest runs beside them) against the goals."""
    totals = [r["total"] for r in runs]
    floor_totals = [sum(f["wall"].values()) for f in floors]
    compiled_totals = [sum(f["compiled_wall"].values()) for f in floors]
    median_run = sorted(runs, key=lambda r: r["total"])[len(runs) // 2]
    median_floor = sorted(floors, key=lambda f: sum(f["wall"].values()))[len(floors) // 2]
    process, floor = statistics.median(totals), statistics.median(floor_totals)
    ratio, compiled = process / floor, statistics.median(compiled_totals)
    rss = max(r["rss_gb"] for r in runs)
    diff = max(max(f["max_diff"].values()) for f in floors)
    print(f"\nprocess: {runs[0]['alerts']} alerts, {runs[0]['clusters']} clusters, {len(runs)} runs")
    print("engines:                  " + json.dumps(runs[0]["engines"]))
    print("median process steps (s): " + json.dumps(median_run["steps"]))
    print("median bare LightGBM (s): " + json.dumps({k: round(v, 3)
                                                     for k, v in median_floor["wall"].items()}))
    print("median bare compiled (s): " + json.dumps({k: round(v, 3) for k, v in
                                                     median_floor["compiled_wall"].items()}))
    print(f"total process time   {process:8.2f} s   (median; fastest {min(totals):.2f})")
    print(f"LightGBM floor       {floor:8.2f} s   (median; fastest {min(floor_totals):.2f})")
    print(f"compiled floor       {compiled:8.2f} s   (median; fastest {min(compiled_totals):.2f})")
    print(f"ratio to LightGBM    {ratio:8.2f}     (median/median; fastest/fastest "
          f"{min(totals) / min(floor_totals):.2f}; goal <= {GOAL_RATIO}: "
          f"{'met' if ratio <= GOAL_RATIO else 'NOT met'})")
    print(f"ratio to compiled    {process / compiled:8.2f}     (median/median)")
    floor_cpu = statistics.median(f["cpu"] for f in floors)
    print(f"CPU-time ratio       {statistics.median(r['cpu'] for r in runs) / floor_cpu:8.2f}     "
          f"(process CPU s / LightGBM floor CPU s, medians: less sensitive to other load)")
    _print_cpu_split(runs, floors, floor_cpu)
    print(f"peak RSS of process  {rss:8.2f} GB  (largest of the runs; goal <= {GOAL_RSS_GB}: "
          f"{'met' if rss <= GOAL_RSS_GB else 'NOT met'})")
    print(f"max |score - LightGBM| {diff:.2g}  (every published score of every run; goal <= "
          f"{GOAL_DIFF:g}: {'met' if diff <= GOAL_DIFF else 'NOT met'})")


if __name__ == "__main__":
    sys.exit(main())
