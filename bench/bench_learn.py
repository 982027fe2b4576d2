"""Benchmark of `aml-miner learn`: its cost on a month of history, and what it is worth.

    python bench/bench_learn.py [--dates 30] [--alerts 100000] [--work-dir bench/out/learn]
    python bench/bench_learn.py --input-dir DIR [--work-dir ...]    # a history you bring

1. a history: --dates consecutive sample dates of --alerts alerts with one cumulative
   labels file (generated once into the work dir and reused), or the input dates
   of --input-dir (e.g. labelled data no one here generated);
2. `aml-miner learn --processing-date D` (D = the day after the newest history date,
   so every history date may be used) as a subprocess, with fresh learned-models and
   reports folders; its wall time and the peak RSS of its whole process tree (the
   learn and the evaluate/process children it starts) are measured;
3. the quality: the newest history date is held back from the learn (learn for it,
   not for the day after, so it is never trained on), then scored with the promoted
   set and with the shipped set, and judged against its labels as the validator does.

Prints the figures against the goals: learn <= 600 s and peak RSS <= 4 GB (on a month
of 100,000-alert dates), and after learning alert ROC AUC >= 0.95, cluster ROC AUC
>= 0.90, alert Brier <= 0.10 (on a history no one here generated).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

LAST_DATE = dt.date(2025, 10, 28)
GOALS = {"seconds": 600.0, "peak_rss_gb": 4.0}
QUALITY_GOALS = {"alert_auc": (0.95, ">="), "cluster_auc": (0.90, ">="), "alert_brier": (0.10, "<=")}


def sample_history(work_dir: Path, dates: int, alerts: int) -> Path:
    """dates sample dates ending LAST_DATE under work_dir/input (reused when present)."""
    import pyarrow.parquet as pq

    from shared.sample import write_history

    input_dir = work_dir / "input"
    wanted = [(LAST_DATE - dt.timedelta(days=n)).isoformat() for n in range(dates - 1, -1, -1)]
    have = [d for d in wanted if (input_dir / d / "alerts.parquet").is_file()
            and pq.read_metadata(input_dir / d / "alerts.parquet").num_rows == alerts]
    if have == wanted:
        print(f"reusing {len(wanted)} sample dates of {alerts} alerts in {input_dir}")
        return input_dir
    started = time.perf_counter()
    shutil.rmtree(work_dir / "sot", ignore_errors=True)
    write_history("bitcoin", wanted, 7, work_dir / "sot", input_dir, n_alerts=alerts, seed=5)
    shutil.rmtree(work_dir / "sot", ignore_errors=True)
    print(f"generated {len(wanted)} dates of {alerts} alerts in "
          f"{time.perf_counter() - started:.0f} s")
    os.sync()
    return input_dir


class TreePeak(threading.Thread):
    """Samples the summed RSS of a process and its descendants until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.root, self.peak, self.done = psutil.Process(pid), 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            try:
                tree = [self.root, *self.root.children(recursive=True)]
                total = sum(p.memory_info().rss for p in tree if p.is_running())
            except psutil.Error:
                continue
            self.peak = max(self.peak, total)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def aml_miner(*args: str, env: dict, log: Path) -> tuple[float, float, float, int]:
    """Run `aml-miner ARGS`; (wall seconds, CPU seconds of its whole tree, peak tree RSS in
    GB, exit code). On a busy machine the CPU seconds say more than the wall time."""
    with open(log, "w") as out:
        started, cpu = time.perf_counter(), _children_cpu()
        proc = subprocess.Popen([sys.executable, "-m", "services.cli", *args], cwd=REPO,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
        peak = TreePeak(proc.pid)
        peak.start()
        code = proc.wait()
        peak.done.set()
        peak.join()
    return time.perf_counter() - started, _children_cpu() - cpu, peak.peak / 1e9, code


def env_for(work: Path, input_dir: Path) -> dict:
    """A child environment with its own learned models, outputs and reports."""
    return {**os.environ, "PYTHONPATH": str(REPO), "INPUT_DIR": str(input_dir),
            "OUTPUT_DIR": str(work / "output"), "LEARNED_MODELS_DIR": str(work / "models"),
            "MODELS_DIR": str(REPO / "trained_models"), "LEARN_MAX_DATES": "30",
            "MODEL_GITHUB_URL": "https://github.com/example/aml-miner", "LOG_LEVEL": "INFO"}


def history_dates(input_dir: Path) -> list[str]:
    from shared.storage import published_dates

    return sorted(published_dates(input_dir))


def judge(work: Path, input_dir: Path, date: str, env: dict, models: Path, label: str) -> dict:
    """Process date with a models folder and judge it against its own labels."""
    out = work / f"judge-{label}"
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run([sys.executable, "-m", "services.cli", "process", "--input-dir",
                           str(input_dir), "--output-dir", str(out), "--processing-date", date,
                           "--models-dir", str(models)], cwd=REPO, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"process with {models} failed: {done.stderr[-2000:]}")
    done = subprocess.run([sys.executable, "-m", "services.cli", "validate", "--processing-date",
                           date, "--input-dir", str(input_dir), "--output-dir", str(out),
                           "--report-dir", str(out / "reports"), "--no-determinism"],
                          cwd=REPO, env=env, capture_output=True, text=True)
    report = json.loads((out / "reports" / f"validate_{date}.json").read_text())
    truth = report["ground_truth"]
    return {"alert_auc": truth["alerts"]["roc_auc"], "alert_brier": truth["alerts"]["brier"],
            "cluster_auc": truth["clusters"]["roc_auc"],
            "ndcg_at_100": truth["ranking"].get("ndcg_at_100"),
            "gate": report["verdict"]["integrity_gate"]}


def _ratio_line(name: str, value: float, goal: float, sense: str) -> str:
    met = value <= goal if sense == "<=" else value >= goal
    return (f"  {name:<14} {value:9.4f}   goal {sense} {goal:g}   ratio {value / goal:.2f}   "
            f"{'met' if met else 'NOT met'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dates", type=int, default=30, help="sample history dates (default 30)")
    parser.add_argument("--alerts", type=int, default=100_000,
                        help="alerts per sample date (default 100000)")
    parser.add_argument("--input-dir", type=Path, help="use these input dates instead of samples")
    parser.add_argument("--work-dir", type=Path, default=REPO / "bench" / "out" / "learn")
    args = parser.parse_args()
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    input_dir = (args.input_dir.resolve() if args.input_dir
                 else sample_history(work, args.dates, args.alerts))
    dates = history_dates(input_dir)
    held_back = dates[-1]
    print(f"history: {len(dates)} dates {dates[0]} .. {dates[-1]} in {input_dir}; "
          f"learning for {held_back} (so it is never trained on); "
          f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")
    for folder in ("models", "output", "reports"):
        shutil.rmtree(work / folder, ignore_errors=True)
    env = env_for(work, input_dir)
    load = os.getloadavg()[0]
    seconds, cpu, peak_gb, code = aml_miner("learn", "--processing-date", held_back, env=env,
                                            log=work / "learn.log")
    if code != 0:
        sys.exit(f"learn failed (exit {code}); see {work / 'learn.log'}")
    record = json.loads((work / "models" / "bitcoin" / "7d" / "last_learn.json").read_text())
    print(f"learn: {record['decision']} {record.get('version') or ''}: {record['reason']}")
    print(f"  trained on {len(record['training_dates'])} dates, compared on "
          f"{record['comparison_date']} (log: {work / 'learn.log'})")
    print("cost (the whole `aml-miner learn`: training, comparison, compile):")
    print(_ratio_line("seconds", seconds, GOALS["seconds"], "<="))
    print(f"  {'CPU seconds':<14} {cpu:9.1f}   (training is one thread; load average "
          f"{load:.2f} before, {os.getloadavg()[0]:.2f} after)")
    print(_ratio_line("peak RSS GB", peak_gb, GOALS["peak_rss_gb"], "<="))
    if not record.get("version"):
        return 0
    learned = work / "models" / "bitcoin" / "7d" / record["version"]
    print(f"quality on {held_back} (held back from the learn), judged by its own labels:")
    shipped = judge(work, input_dir, held_back, env, REPO / "trained_models", "shipped")
    candidate = judge(work, input_dir, held_back, env, learned, "learned")
    for name, (goal, sense) in QUALITY_GOALS.items():
        print(_ratio_line(f"learned {name}", candidate[name], goal, sense)
              + f"   (shipped {shipped[name]:.4f})")
    print(f"  NDCG@100 learned {candidate['ndcg_at_100']} shipped {shipped['ndcg_at_100']}; "
          f"gate {candidate['gate']} (the learned set is "
          f"{'promoted' if record['decision'] == 'promoted' else 'NOT promoted'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
