"""Rolling-origin evaluation of the learner's recipe, in memory: past-only, several dates.

    python bench/rolling_origin.py --input-dir DIR [--targets 5] [--half-life 3]
        [--skip 0] [--cluster-score choose|model|member_alert_max] [--fixed-rounds]

For each of the newest --targets dates D of the history (the scored date), it does what
`aml-miner learn --processing-date D` followed by `process` of D does with the models, without
the subprocesses: history = the labelled dates strictly before D (at most 30), judged by the
labels file downloaded with D; the ranker trains on all but the two newest history dates
(the learner's candidate, its trainer holding out one date), the alert and cluster scorers on
every history date (the refit); then D is scored and judged against its own labels as the
validator does (alert ROC AUC and Brier, NDCG@100 of the ranking over labelled alerts,
cluster ROC AUC). Nothing of D or later trains anything. It prints one line per date and
the mean, so a choice is judged on several dates, not on one.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from services.processor import dataset, scoring, train  # noqa: E402
from services.processor.features import alert_features, cluster_features  # noqa: E402
from services.processor.inputs import load_inputs  # noqa: E402
from services.validator import metrics as vm  # noqa: E402
from shared import contract  # noqa: E402
from shared.labels import alert_labels, cluster_labels  # noqa: E402
from shared.storage import date_dir, published_dates  # noqa: E402


MAX_ROWS = 300_000  # LEARN_MAX_ROWS's default


class Date:
    """One input date's feature frames and what its labels are derived from."""

    def __init__(self, input_dir: Path, date: str):
        folder = date_dir(input_dir, date)
        inputs = load_inputs(folder)
        self.date = date
        self.alerts = alert_features(inputs.alerts, inputs.features, inputs.clusters,
                                     inputs.money_flows, inputs.links)
        self.clusters = cluster_features(inputs.clusters, inputs.alerts, inputs.features,
                                         inputs.money_flows, inputs.links, self.alerts)
        self.addresses = inputs.alerts.column("address").to_numpy()
        self.alert_ids = inputs.alerts.column("alert_id").to_numpy()
        self.members = inputs.clusters.select(
            [c for c in ("related_alert_ids", "primary_alert_id")
             if c in inputs.clusters.column_names]).to_pandas()
        self.links = inputs.links
        self.labels_path = folder / contract.LABELS_FILE

    def labelled(self, labels) -> dataset.DateData:
        """Labelled rows only, judged by one labels table."""
        alert_y = alert_labels(self.addresses, labels)
        cluster_y = cluster_labels(self.members, self.alert_ids, alert_y)
        return dataset.DateData(self.date, *dataset._labelled_only(self.alerts, alert_y),
                                *dataset._labelled_only(self.clusters, cluster_y))


def binary_models(spec, part, data: dict, history: list[str], half_life):
    """The learner's candidate and promoted binary model: the candidate trains on
    history[:-2] (its rounds chosen on the trainer's validation date history[-2]), the
    refit on all of history with those rounds."""
    candidate = train.fit(spec, rows(part, data, history[:-2]), half_life,
                          part([data[history[-2]]]))
    if spec.early_stopping:
        spec = dataclasses.replace(spec, rounds=candidate.num_trees(), early_stopping=0)
    return candidate, train.fit(spec, rows(part, data, history), half_life)


def rows(part, data: dict, dates: list[str]):
    """The training rows of some dates, at most MAX_ROWS drawn at random as the learner does."""
    return part([data[d] for d in dates]).sample(MAX_ROWS, train.SEED)


def score_date(input_dir: Path, dates: dict[str, Date], history: list[str], target: str,
               half_life, specs, rule: str) -> dict:
    """Train as the learner would for target on history (all before it); judge target."""
    assert all(d < target for d in history)
    labels = dataset.read_labels(dates[target].labels_path)
    data = {d: dates[d].labelled(labels) for d in history}
    test = dates[target]
    alert_y = alert_labels(test.addresses, labels)
    cluster_y = cluster_labels(test.members, test.alert_ids, alert_y)
    known, cknown = ~np.isnan(alert_y), ~np.isnan(cluster_y)
    spec = {s.name: s for s in specs}
    out = {}
    scorer = binary_models(spec["alert_scorer"], dataset.alert_part, data, history, half_life)
    s = scorer[1].predict(test.alerts[scorer[1].feature_name()].to_numpy(np.float64))
    out["alert_auc"] = vm.roc_auc(alert_y[known], s[known])
    out["brier"] = vm.brier(alert_y[known], s[known])
    ranker = train.fit(spec["alert_ranker"], rows(dataset.alert_part, data, history[:-2]))
    r = ranker.predict(test.alerts[ranker.feature_name()].to_numpy(np.float64))[known]
    out["ndcg100"] = vm.ndcg_at_k(alert_y[known][np.argsort(-r, kind="stable")], 100)
    # the same top 100 ordered by the alert scorer instead of the ranker, for comparison
    out["ndcg100_by_scorer"] = vm.ndcg_at_k(alert_y[known][np.argsort(-s[known],
                                                                      kind="stable")], 100)
    cl = binary_models(spec["cluster_scorer"], dataset.cluster_part, data, history, half_life)
    if rule == train.CHOOSE:
        rule = train.choose_cluster_score(input_dir, history[-2:-1], labels, scorer[0],
                                          cl[0])["rule"]
    c = cl[1].predict(test.clusters[cl[1].feature_name()].to_numpy(np.float64))
    if rule == scoring.MEMBER_ALERT_MAX:
        c = scoring.member_alert_max(c, s, test.links)
    out["cluster_auc"] = vm.roc_auc(cluster_y[cknown], c[cknown])
    out["rounds"] = scorer[1].num_trees()
    out["member_rule"] = float(rule == scoring.MEMBER_ALERT_MAX)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-dir", type=Path, required=True)
    parser.add_argument("--targets", type=int, default=5, help="newest dates scored (default 5)")
    parser.add_argument("--skip", type=int, default=0,
                        help="leave out this many newest dates (e.g. to choose on older ones)")
    parser.add_argument("--half-life", type=float, default=3.0, help="0: all dates alike")
    parser.add_argument("--cluster-score", default=train.CHOOSE,
                        choices=(train.CHOOSE, *scoring.CLUSTER_SCORE_RULES))
    parser.add_argument("--fixed-rounds", action="store_true",
                        help="the shipped trainer's fixed rounds, no early stopping")
    parser.add_argument("--max-dates", type=int, default=30)
    args = parser.parse_args()
    all_dates = sorted(published_dates(args.input_dir))
    started = time.perf_counter()
    dates = {d: Date(args.input_dir, d) for d in all_dates}
    print(f"{len(dates)} dates read in {time.perf_counter() - started:.0f} s")
    specs = train.LEARNING_SPECS
    if args.fixed_rounds:
        specs = tuple(dataclasses.replace(s, rounds=f.rounds, early_stopping=0)
                      for s, f in zip(specs, train.SPECS))
    rows = []
    for target in all_dates[:len(all_dates) - args.skip][-args.targets:]:
        history = [d for d in all_dates if d < target][-args.max_dates:]
        res = score_date(args.input_dir, dates, history, target, args.half_life or None, specs,
                         args.cluster_score)
        rows.append(res)
        print(f"{target}: " + "  ".join(f"{k} {v:.4f}" for k, v in res.items()), flush=True)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    print("mean: " + "  ".join(f"{k} {v:.4f}" for k, v in mean.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
