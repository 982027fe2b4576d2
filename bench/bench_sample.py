"""Time and peak memory of generating and writing a 1,000,000-alert sample date.

Prints the figures and their ratio to the goals (3 GB peak RSS, 180 s on 2 cores).
Usage: python bench/bench_sample.py [--alerts N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.sample import generate_batch, write_input, write_sot  # noqa: E402

RSS_GOAL_GB = 3.0
TIME_GOAL_S = 180.0


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # Linux: KiB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--keep", help="write here instead of a temporary folder")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        t0 = time.perf_counter()
        batch = generate_batch("bitcoin", "2025-10-26", 7, n_alerts=args.alerts, seed=0)
        t1 = time.perf_counter()
        gen_rss = peak_rss_gb()
        prefix = write_sot(batch, root / "sot")
        write_input(batch, root / "input")
        t2 = time.perf_counter()
        size = sum(p.stat().st_size for p in prefix.iterdir()) / 1e6
    total = t2 - t1 + (t1 - t0)
    print(f"alerts {batch.alerts.num_rows}, addresses {batch.features.num_rows}, "
          f"clusters {batch.clusters.num_rows}, flows {batch.money_flows.num_rows}, "
          f"labels {batch.labels.num_rows}; batch files {size:.0f} MB")
    print(f"generate {t1 - t0:.1f} s, write both layouts {t2 - t1:.1f} s, total {total:.1f} s "
          f"(ratio to {TIME_GOAL_S:.0f} s goal: {total / TIME_GOAL_S:.2f})")
    print(f"peak RSS after generate {gen_rss:.2f} GB, overall {peak_rss_gb():.2f} GB "
          f"(ratio to {RSS_GOAL_GB:.1f} GB goal: {peak_rss_gb() / RSS_GOAL_GB:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
