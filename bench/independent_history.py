"""A labelled SOT history that no one here generated: IBM AMLSim's published sample run,
converted date by date into the SOT's exact layout (as `aml-miner download` leaves it).

    python bench/independent_history.py [--source FILE.tgz] [--output DIR] [--dates 30]
    python bench/bench_learn.py --input-dir DIR --work-dir /tmp/bl-indep

What it downloads, from where
-----------------------------
One file: `sample/20K_fanin200cycle200.tgz` of the public GitHub repository IBM/AMLSim
(Apache-2.0; https://github.com/IBM/AMLSim, stored at commit b4fd658a, also carried by
forks such as mariotrerotola/AMLSim), sha256 f187bc57...48319 (checked). It is the output
of one AMLSim run by its authors (2019): 20,000 accounts (1,803 marked fraudulent),
120,558 transactions over 149 simulation steps, with 200 cycle and 200 fan-in laundering
patterns injected. Nothing of AMLSim's code is used or run here. Without --source the file
is fetched from DEFAULT_URL with urllib; with --source a local copy is read (no network).

Inside: `nodes.csv` (nodeid, isFraud, init_balance, fraudStep) and `transactions.csv`
(sourceNodeId, targetNodeId, value, time).

How the fields map
------------------
* step t -> calendar day BASE_DATE + t (step 0 = 2025-08-01); a transaction of step t is
  stamped at noon of that day (AMLSim has no time of day, so hour features are constant).
* processing date D = day of step s; its batch covers the window_days (7) steps
  [s - 7, s) - the SOT's `[date - window_days, date)`. Default: s = 60 .. 89, i.e. 30 dates
  2025-09-30 .. 2025-10-29, where the run is densest (~1,000 transactions a step).
* address = "amlsim-" + nodeid; `value` is the amount in USD, one asset "USD".
* features.parquet: one row per address active in the window, computed from the window's
  transactions only (degrees, volumes, amount moments, daily activity, reciprocity,
  counterparty concentration, PageRank, clustering coefficient, k-core, weakly connected
  component, k-hop counts/volumes) plus first/last activity over all steps before s
  (never after). betweenness/closeness are left null (not computed).
* alerts.parquet: our own typology detectors run on the window's transactions
  (MOTIF_FANIN/FANOUT: >= 3 distinct senders/receivers; CYCLE_DETECTION: member of a
  directed strongly connected component; PING_PONG: a reciprocated counterparty;
  LAYERING_PATH: pass-through in ~ out; STRUCTURING: >= 3 similar outgoing amounts;
  VELOCITY_ANOMALY / HUB_ANOMALY: top 2 % by transactions / degree). Detectors never see
  isFraud. alert_id = uuid5(address-typology-date) as the producer's.
* clusters.parquet: same_entity (an address with >= 2 alerts) and related_network
  (a weakly connected component, 2-60 addresses, of the alerted addresses' window graph).
* money_flows.parquet: the window's transactions grouped by (from, to).
* address labels (the cumulative file, as downloaded with each date): every address seen
  in a transaction before the date's step is labelled with probability LABEL_COVERAGE
  (a stable hash of the address): isFraud = 1 -> risk_level "high" (label
  "money_laundering"), isFraud = 0 -> "low". The labels are AMLSim's ground truth only.

Each date is written to OUTPUT/{date}/ with META.json (sha256 of each file), the four
batch files, address_labels.parquet and DOWNLOAD.json, published atomically as a download
is (shared.storage.staging_dir/publish). Network "bitcoin", window 7 (what
bench/bench_learn.py reads). One process, numpy/scipy; ~2-4 s a date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import sys
import tarfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from shared import contract  # noqa: E402
from shared.manifest import file_entry, write_manifest  # noqa: E402
from shared.sample import _write_batch_files, write_parquet  # noqa: E402
from shared.samplegen.columns import decimal_usd  # noqa: E402
from shared.storage import date_dir, publish, sha256_file, staging_dir  # noqa: E402

DEFAULT_URL = "https://github.com/IBM/AMLSim/raw/master/sample/20K_fanin200cycle200.tgz"
SHA256 = "f187bc5784223cdee137ac603164f7183fd58f114090f39e2a12543b6bf48319"
MEMBER = "20K_fanin200cycle200"
BASE_DATE = dt.date(2025, 8, 1)  # step 0
DAY_MS = 86_400_000
NOON_MS = DAY_MS // 2
LABEL_COVERAGE = 0.8
NETWORK = "bitcoin"
ALERT_NAMESPACE = uuid.NAMESPACE_OID


class Batch:
    """The tables of one date (what shared.sample._write_batch_files reads)."""

    def __init__(self, network, processing_date, window_days, **tables):
        self.network, self.processing_date, self.window_days = network, processing_date, window_days
        for name, table in tables.items():
            setattr(self, name, table)

    def counts(self):
        return {n: getattr(self, n).num_rows for n in ("alerts", "features", "clusters",
                                                       "money_flows")}


# --- source --------------------------------------------------------------------------------

def read_source(source: Path | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(nodes, transactions) of the AMLSim sample run, checked against its sha256."""
    data = Path(source).read_bytes() if source else urllib.request.urlopen(DEFAULT_URL).read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        sys.exit(f"the AMLSim sample has sha256 {digest}, expected {SHA256}")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        nodes = pd.read_csv(tar.extractfile(f"{MEMBER}/nodes.csv"))
        tx = pd.read_csv(tar.extractfile(f"{MEMBER}/transactions.csv"))
    tx.columns = ["src", "dst", "amount", "step"]
    return nodes, tx


def step_date(step: int) -> str:
    return (BASE_DATE + dt.timedelta(days=int(step))).isoformat()


def step_ms(step) -> np.ndarray:
    epoch = (BASE_DATE - dt.date(1970, 1, 1)).days
    return (epoch + np.asarray(step, dtype=np.int64)) * DAY_MS + NOON_MS


def name(ids) -> np.ndarray:
    return np.array([f"amlsim-{int(i)}" for i in ids], dtype=object)


def stable_unit(ids: np.ndarray) -> np.ndarray:
    """A uniform [0, 1) per node id, the same on every date (label coverage)."""
    x = (np.asarray(ids, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15))
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


# --- one date ------------------------------------------------------------------------------

def _entropy(shares_by_group: pd.Series) -> pd.Series:
    p = shares_by_group[shares_by_group > 0]
    return (-(p * np.log(p))).groupby(level=0).sum()


def address_features(win: pd.DataFrame, past: pd.DataFrame, s: int, window: int):
    """One row per address active in the window (a DataFrame indexed by node id)."""
    long = pd.concat([
        pd.DataFrame({"a": win.src.values, "cp": win.dst.values, "amt": win.amount.values,
                      "out": True, "step": win.step.values}),
        pd.DataFrame({"a": win.dst.values, "cp": win.src.values, "amt": win.amount.values,
                      "out": False, "step": win.step.values})], ignore_index=True)
    g = long.groupby("a")
    f = pd.DataFrame(index=pd.Index(np.sort(long.a.unique()), name="a"))
    outs, ins = long[long.out], long[~long.out]
    f["degree_out"] = outs.groupby("a").cp.nunique()
    f["degree_in"] = ins.groupby("a").cp.nunique()
    f = f.fillna(0)
    f["degree_total"] = f.degree_in + f.degree_out
    f["unique_counterparties"] = g.cp.nunique()
    f["total_out_usd"] = outs.groupby("a").amt.sum()
    f["total_in_usd"] = ins.groupby("a").amt.sum()
    f[["total_out_usd", "total_in_usd"]] = f[["total_out_usd", "total_in_usd"]].fillna(0)
    f["net_flow_usd"] = f.total_in_usd - f.total_out_usd
    f["total_volume_usd"] = f.total_in_usd + f.total_out_usd
    f["tx_out_count"] = outs.groupby("a").size()
    f["tx_in_count"] = ins.groupby("a").size()
    f[["tx_out_count", "tx_in_count"]] = f[["tx_out_count", "tx_in_count"]].fillna(0)
    f["tx_total_count"] = f.tx_in_count + f.tx_out_count
    f["avg_tx_in_usd"] = (f.total_in_usd / f.tx_in_count.replace(0, np.nan)).fillna(0)
    f["avg_tx_out_usd"] = (f.total_out_usd / f.tx_out_count.replace(0, np.nan)).fillna(0)
    f["median_tx_in_usd"] = ins.groupby("a").amt.median()
    f["median_tx_out_usd"] = outs.groupby("a").amt.median()
    f[["median_tx_in_usd", "median_tx_out_usd"]] = f[["median_tx_in_usd",
                                                      "median_tx_out_usd"]].fillna(0)
    f["max_tx_usd"], f["min_tx_usd"] = g.amt.max(), g.amt.min()
    mean = g.amt.mean()
    f["amount_variance"] = g.amt.var(ddof=0)
    std = np.sqrt(f.amount_variance)
    centred = long.amt - long.a.map(mean)
    m3 = (centred ** 3).groupby(long.a).mean()
    m4 = (centred ** 4).groupby(long.a).mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        f["amount_skewness"] = (m3 / std ** 3).where(std > 0, 0.0)
        f["amount_kurtosis"] = (m4 / std ** 4 - 3).where(std > 0, 0.0)
    f["volume_std"] = std
    f["volume_cv"] = (std / mean).fillna(0)
    per_cp = long.groupby(["a", "cp"]).amt.sum()
    share = per_cp / per_cp.groupby(level=0).transform("sum")
    f["flow_concentration"] = share.groupby(level=0).max()
    f["concentration_ratio"] = f.flow_concentration
    f["counterparty_concentration"] = (share ** 2).groupby(level=0).sum()
    n_cp = f.unique_counterparties
    ent = _entropy(share)
    f["flow_diversity"] = (ent / np.log(n_cp.where(n_cp > 1))).fillna(0)
    f["activity_days"] = g.step.nunique()
    f["activity_span_days"] = g.step.max() - g.step.min() + 1
    f["avg_daily_volume_usd"] = f.total_volume_usd / f.activity_days
    daily = long.groupby(["a", "step"]).size()
    dmean, dstd = daily.groupby(level=0).mean(), daily.groupby(level=0).std(ddof=0)
    f["regularity_score"] = 1.0 / (1.0 + (dstd / dmean))
    f["burst_factor"] = daily.groupby(level=0).max() / (f.tx_total_count / window)
    both = long.groupby(["a", "cp"]).out.agg(["min", "max"])
    recip = (both["min"] != both["max"]).groupby(level=0).sum()
    f["reciprocity_ratio"] = (recip / n_cp).fillna(0)
    f["velocity_score"] = np.minimum(1.0, f.tx_total_count / (5.0 * window))
    out_med = outs.a.map(f.median_tx_out_usd)
    similar = (np.abs(outs.amt - out_med) <= 0.05 * out_med).groupby(outs.a).sum()
    f["structuring_score"] = (similar / f.tx_out_count.replace(0, np.nan)).fillna(0)
    long["weekday"] = (BASE_DATE.weekday() + long.step.to_numpy()) % 7
    wk = long.groupby(["a", "weekday"]).size().unstack(fill_value=0).reindex(
        columns=range(7), fill_value=0).reindex(f.index, fill_value=0)
    f["daily_activity"] = list(wk.to_numpy(dtype=np.uint16))
    f["peak_day"] = wk.to_numpy().argmax(axis=1)
    f["peak_activity_day"] = f.peak_day
    wshare = wk.div(wk.sum(axis=1), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        f["daily_entropy"] = -(wshare * np.log(wshare.where(wshare > 0, 1))).sum(axis=1)
    f["weekend_transaction_ratio"] = wshare[[5, 6]].sum(axis=1)
    hourly = np.zeros((len(f), 24), dtype=np.uint16)
    hourly[:, 12] = np.minimum(f.tx_total_count.to_numpy(), 65535)
    f["hourly_activity"] = list(hourly)
    f["peak_hour"] = f["peak_activity_hour"] = 12
    f["hourly_entropy"] = f["night_transaction_ratio"] = 0.0
    small = long.amt < 0.1 * win.amount.median()
    f["small_transaction_ratio"] = small.groupby(long.a).mean()
    dvol = long.groupby(["a", "step"]).amt.sum()
    vcv = dvol.groupby(level=0).std(ddof=0) / dvol.groupby(level=0).mean()
    f["consistency_score"] = np.clip(1 - vcv, 0, 1)
    f["unique_assets_in"] = (f.tx_in_count > 0).astype(int)
    f["unique_assets_out"] = (f.tx_out_count > 0).astype(int)
    f["dominant_asset_in"] = np.where(f.tx_in_count > 0, "USD", "")
    f["dominant_asset_out"] = np.where(f.tx_out_count > 0, "USD", "")
    f["asset_diversity_score"] = 0.0
    _graph_features(f, win)
    # advanced flow
    io_share = f.total_out_usd / f.total_volume_usd
    with np.errstate(divide="ignore", invalid="ignore"):
        f["flow_reciprocity_entropy"] = np.nan_to_num(
            -(io_share * np.log(io_share) + (1 - io_share) * np.log(1 - io_share)))
    cp_days = long.groupby(["a", "cp"]).step.nunique()
    f["counterparty_stability"] = (cp_days > 1).groupby(level=0).mean()
    gaps = long.sort_values(["a", "step"]).groupby("a").step.diff().dropna()
    gmean, gstd = gaps.groupby(long.a).mean(), gaps.groupby(long.a).std(ddof=0)
    f["flow_burstiness"] = ((gstd - gmean) / (gstd + gmean)).reindex(f.index).fillna(0)
    f["transaction_regularity"] = (1 / (1 + gstd)).reindex(f.index).fillna(0)
    f["amount_predictability"] = np.clip(1 - f.volume_cv, 0, 1)
    # history before the date (never after it)
    first = pd.concat([past.groupby("src").step.min(), past.groupby("dst").step.min()]
                      ).groupby(level=0).min()
    last_before = pd.concat([past[past.step < s - window].groupby("src").step.max(),
                             past[past.step < s - window].groupby("dst").step.max()]
                            ).groupby(level=0).max()
    fst = first.reindex(f.index)
    f["is_new_address"] = (fst >= s - window).to_numpy()
    lb = last_before.reindex(f.index)
    f["is_dormant_reactivated"] = (lb < s - window - 30).fillna(False).to_numpy()
    f["first_activity_timestamp"] = step_ms(fst.to_numpy())
    f["last_activity_timestamp"] = step_ms(g.step.max().to_numpy())
    f["unique_recipients_count"], f["unique_senders_count"] = f.degree_out, f.degree_in
    return f.fillna({"amount_variance": 0, "volume_std": 0, "regularity_score": 1,
                     "consistency_score": 1, "counterparty_stability": 0})


def _graph_features(f: pd.DataFrame, win: pd.DataFrame) -> None:
    idx = pd.Series(np.arange(len(f)), index=f.index)
    src, dst = idx[win.src].to_numpy(), idx[win.dst].to_numpy()
    n = len(f)
    a = sp.csr_matrix((win.amount.to_numpy(), (src, dst)), shape=(n, n))
    und = ((a + a.T) > 0).astype(np.float64).tocsr()
    und.setdiag(0)
    und.eliminate_zeros()
    # PageRank on the amount-weighted directed graph
    out_w = np.asarray(a.sum(axis=1)).ravel()
    pt = sp.diags(np.where(out_w > 0, 1 / np.where(out_w > 0, out_w, 1), 0)) @ a
    pr = np.full(n, 1 / n)
    for _ in range(40):
        pr = 0.15 / n + 0.85 * (pt.T @ pr + pr[out_w == 0].sum() / n)
    f["pagerank"] = pr
    f["betweenness"] = np.nan
    f["closeness"] = np.nan
    deg = np.asarray(und.sum(axis=1)).ravel()
    tri = np.asarray((und @ und).multiply(und).sum(axis=1)).ravel() / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        f["clustering_coefficient"] = np.where(deg > 1, 2 * tri / (deg * (deg - 1)), 0)
    f["centrality_score"] = deg / max(deg.max(), 1)
    f["kcore"] = _kcore(und, deg)
    f["community_id"] = connected_components(und, directed=False)[1]
    vol = f.total_volume_usd.to_numpy()
    reach = und.copy()
    eye = sp.identity(n, format="csr")
    seen = (reach + eye) > 0
    for k in (1, 2, 3):
        hop = seen.astype(np.float64) - eye
        f[f"khop{k}_count"] = np.asarray((hop > 0).sum(axis=1)).ravel()
        f[f"khop{k}_volume_usd"] = (hop > 0).astype(np.float64) @ vol
        if k < 3:
            seen = ((seen.astype(np.float64) @ (und + eye)) > 0)


def _kcore(und: sp.csr_matrix, deg: np.ndarray) -> np.ndarray:
    core = np.zeros(len(deg), dtype=np.int64)
    alive = np.ones(len(deg), dtype=bool)
    d = deg.copy()
    k = 0
    while alive.any():
        k += 1
        while True:
            drop = alive & (d < k)
            if not drop.any():
                break
            core[drop] = k - 1
            alive[drop] = False
            d = np.asarray(und[:, alive].sum(axis=1)).ravel()
    return core


DETECTORS = {  # typology: (indicators, pattern type)
    "MOTIF_FANIN": ["many_senders", "fan_in"],
    "MOTIF_FANOUT": ["many_recipients", "fan_out"],
    "CYCLE_DETECTION": ["circular_flow", "funds_return"],
    "PING_PONG": ["back_and_forth", "reciprocal_transfers"],
    "LAYERING_PATH": ["pass_through", "sequential_transfers"],
    "STRUCTURING": ["similar_amounts", "repeated_transfers"],
    "VELOCITY_ANOMALY": ["high_velocity"],
    "HUB_ANOMALY": ["hub", "many_counterparties"],
}


def detect(f: pd.DataFrame, win: pd.DataFrame) -> pd.DataFrame:
    """(node, typology, confidence, pattern_id, evidence) of every detection in the window."""
    found = []

    def add(mask, typ, conf, pattern="", evidence=None):
        nodes = f.index[mask]
        conf = np.broadcast_to(np.asarray(conf, dtype=float), (len(f),))[mask]
        pat = np.broadcast_to(np.asarray(pattern, dtype=object), (len(f),))[mask]
        ev = evidence[mask] if evidence is not None else np.full(mask.sum(), "{}")
        found.append(pd.DataFrame({"node": nodes, "typology": typ, "conf": conf,
                                   "pattern": pat, "evidence": ev}))

    def ev(**cols):
        return np.array([json.dumps(dict(zip(cols, map(float, row)))) for row in
                         zip(*[np.asarray(v) for v in cols.values()])], dtype=object)

    din, dout = f.degree_in.to_numpy(), f.degree_out.to_numpy()
    add(din >= 3, "MOTIF_FANIN", np.minimum(0.99, 0.45 + 0.08 * din), "",
        ev(senders=din, inflow=f.total_in_usd))
    add(dout >= 3, "MOTIF_FANOUT", np.minimum(0.99, 0.45 + 0.08 * dout), "",
        ev(recipients=dout, outflow=f.total_out_usd))
    idx = pd.Series(np.arange(len(f)), index=f.index)
    n = len(f)
    a = sp.csr_matrix((np.ones(len(win)), (idx[win.src].to_numpy(), idx[win.dst].to_numpy())),
                      shape=(n, n))
    _, comp = connected_components(a, directed=True, connection="strong")
    size = np.bincount(comp)[comp]
    add(size >= 2, "CYCLE_DETECTION", np.where(size <= 8, 0.92, 0.7),
        np.array([f"scc-{c}" for c in comp], dtype=object), ev(component_size=size))
    rr = f.reciprocity_ratio.to_numpy()
    add(rr > 0, "PING_PONG", np.minimum(0.95, 0.55 + 0.4 * rr), "", ev(reciprocity=rr))
    tin, tout = f.total_in_usd.to_numpy(), f.total_out_usd.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        bal = np.abs(tin - tout) / np.maximum(tin, tout)
    add((tin > 0) & (tout > 0) & (bal <= 0.2), "LAYERING_PATH", 0.6 + 0.35 * (1 - bal / 0.2),
        "", ev(in_usd=tin, out_usd=tout))
    st, nout = f.structuring_score.to_numpy(), f.tx_out_count.to_numpy()
    add((nout >= 3) & (st >= 0.5), "STRUCTURING", 0.5 + 0.45 * st, "",
        ev(similar_share=st, transfers=nout))
    tx = f.tx_total_count.to_numpy()
    add(tx >= max(np.quantile(tx, 0.98), 4), "VELOCITY_ANOMALY",
        np.minimum(0.95, 0.5 + tx / (10 * max(tx.max(), 1))), "", ev(transactions=tx))
    deg = f.degree_total.to_numpy()
    add(deg >= max(np.quantile(deg, 0.98), 4), "HUB_ANOMALY",
        np.minimum(0.95, 0.5 + deg / (10 * max(deg.max(), 1))), "", ev(degree=deg))
    return pd.concat(found, ignore_index=True)


def severity(conf: np.ndarray) -> np.ndarray:
    return np.select([conf >= 0.9, conf >= 0.75, conf >= 0.6], ["critical", "high", "medium"],
                     "low")


SEV_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def _common(n: int, date: str, window: int) -> dict:
    return {"window_days": pa.array(np.full(n, window, dtype=np.uint16)),
            "processing_date": pa.array([dt.date.fromisoformat(date)] * n, pa.date32())}


def _table(cols: dict, schema: pa.Schema) -> pa.Table:
    arrays = []
    for field in schema:
        value = cols[field.name]
        if pa.types.is_decimal(field.type):
            arrays.append(decimal_usd(np.nan_to_num(np.asarray(value, dtype=float))))
        elif isinstance(value, (pa.Array, pa.ChunkedArray)):
            arrays.append(value.cast(field.type))
        else:
            arrays.append(pa.array(value, type=field.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


def build_date(nodes, tx, s: int, window: int, network: str) -> Batch:
    date = step_date(s)
    past = tx[tx.step < s]
    win = past[past.step >= s - window]
    f = address_features(win, past, s, window)
    addr = pd.Series(name(f.index), index=f.index)
    fcols = {c: f[c].to_numpy() for c in f.columns}
    fcols["address"] = addr.to_numpy()
    fcols.update(_common(len(f), date, window))
    features = _table(fcols, contract.FEATURES_SCHEMA)

    det = detect(f, win)
    det["address"] = addr[det.node].to_numpy()
    det["alert_id"] = [str(uuid.uuid5(ALERT_NAMESPACE, f"{a}-{t}-{date}"))
                       for a, t in zip(det.address, det.typology)]
    det["severity"] = severity(det.conf.to_numpy())
    det["volume"] = f.total_volume_usd[det.node].to_numpy()
    det = det.sort_values(["address", "typology"], ignore_index=True)
    n = len(det)
    alerts = _table({
        "alert_id": det.alert_id, "address": det.address, "typology_type": det.typology,
        "pattern_id": det.pattern, "pattern_type": det.typology.str.lower(),
        "severity": det.severity, "suspected_address_type": ["unknown"] * n,
        "suspected_address_subtype": [""] * n,
        "alert_confidence_score": det.conf.astype(np.float32),
        "description": [f"{t.lower().replace('_', ' ')} detected on {a} over {window} days"
                        for t, a in zip(det.typology, det.address)],
        "volume_usd": det.volume, "evidence_json": det.evidence,
        "risk_indicators": [DETECTORS[t] for t in det.typology],
        **_common(n, date, window)}, contract.ALERTS_SCHEMA)

    clusters = build_clusters(det, f, win, addr, date, window)
    flows = build_flows(win, addr, date, window)
    return Batch(network, date, window, alerts=alerts, features=features, clusters=clusters,
                 money_flows=flows)


def build_clusters(det, f, win, addr, date, window) -> pa.Table:
    rows = []
    first_ms = pd.concat([win.groupby("src").step.min(), win.groupby("dst").step.min()]
                         ).groupby(level=0).min()
    last_ms = pd.concat([win.groupby("src").step.max(), win.groupby("dst").step.max()]
                        ).groupby(level=0).max()
    by_node = det.groupby("node")

    def cluster(cid, ctype, members, primary):
        sub = det[det.node.isin(members)]
        best = sub.loc[sub.conf.idxmax()]
        rows.append({
            "cluster_id": cid, "cluster_type": ctype, "primary_address": addr[primary],
            "pattern_id": "", "primary_alert_id": best.alert_id,
            "related_alert_ids": list(sub.alert_id), "addresses_involved": list(addr[members]),
            "total_alerts": len(sub), "total_volume_usd": float(f.total_volume_usd[members].sum()),
            "severity_max": max(sub.severity, key=SEV_RANK.get),
            "confidence_avg": float(sub.conf.mean()),
            "earliest_alert_timestamp": int(step_ms(first_ms[members].min())),
            "latest_alert_timestamp": int(step_ms(last_ms[members].max()))})

    for node, group in by_node:
        if len(group) >= 2:
            cluster(f"cluster_same_entity_{addr[node]}_{date}", "same_entity", [node], node)
    alerted = np.sort(det.node.unique())
    pos = pd.Series(np.arange(len(alerted)), index=alerted)
    e = win[win.src.isin(alerted) & win.dst.isin(alerted)]
    m = sp.csr_matrix((np.ones(len(e)), (pos[e.src].to_numpy(), pos[e.dst].to_numpy())),
                      shape=(len(alerted), len(alerted)))
    _, comp = connected_components(m, directed=False)
    for c, members in pd.Series(alerted).groupby(comp):
        if 2 <= len(members) <= 60:
            members = list(members)
            primary = max(members, key=lambda x: f.total_volume_usd[x])
            cluster(f"cluster_related_network_{addr[primary]}_{date}", "related_network",
                    members, primary)
    frame = pd.DataFrame(rows)
    frame = frame.sort_values("cluster_id", ignore_index=True)
    cols = {c: frame[c].tolist() for c in frame.columns}
    cols["total_volume_usd"] = frame.total_volume_usd.to_numpy()
    cols.update(_common(len(frame), date, window))
    return _table(cols, contract.CLUSTERS_SCHEMA)


def build_flows(win, addr, date, window) -> pa.Table:
    g = win.groupby(["src", "dst"])
    fl = g.agg(tx_count=("amount", "size"), amount=("amount", "sum"),
               first=("step", "min"), last=("step", "max"), days=("step", "nunique")).reset_index()
    rev = fl.set_index(["src", "dst"]).amount
    back = rev.reindex(list(zip(fl.dst, fl.src))).to_numpy()
    n = len(fl)
    hourly = np.zeros((n, 24), dtype=np.uint16)
    hourly[:, 12] = np.minimum(fl.tx_count.to_numpy(), 65535)
    weekday = (BASE_DATE.weekday() + win.step.to_numpy()) % 7
    week = (pd.DataFrame({"src": win.src.to_numpy(), "dst": win.dst.to_numpy(), "wd": weekday})
            .groupby(["src", "dst", "wd"]).size().unstack(fill_value=0)
            .reindex(columns=range(7), fill_value=0)
            .reindex(pd.MultiIndex.from_arrays([fl.src, fl.dst])).to_numpy(dtype=np.uint16))
    with np.errstate(invalid="ignore", divide="ignore"):
        recip = np.where(np.isnan(back), 0.0, np.minimum(back, fl.amount) /
                         np.maximum(back, fl.amount))
    cols = {"from_address": addr[fl.src].to_numpy(), "to_address": addr[fl.dst].to_numpy(),
            "tx_count": fl.tx_count.to_numpy(), "amount_sum": fl.amount.to_numpy(),
            "amount_usd_sum": fl.amount.to_numpy(),
            "first_seen_timestamp": step_ms(fl["first"]), "last_seen_timestamp": step_ms(fl["last"]),
            "active_days": fl.days.to_numpy(), "unique_assets": np.ones(n, dtype=np.uint32),
            "avg_tx_size_usd": (fl.amount / fl.tx_count).to_numpy(),
            "dominant_asset": ["USD"] * n, "hourly_pattern": list(hourly),
            "weekly_pattern": list(week), "reciprocity_ratio": recip.astype(np.float32),
            "is_bidirectional": ~np.isnan(back),
            "window_days": np.full(n, window, dtype=np.uint16), "processing_date": [date] * n}
    return _table(cols, contract.MONEY_FLOWS_SCHEMA)


def labels_at(nodes: pd.DataFrame, tx: pd.DataFrame, s: int, network: str) -> pa.Table:
    """The cumulative labels file as of step s: AMLSim's ground truth of the addresses seen
    before s, for a stable LABEL_COVERAGE share of them."""
    past = tx[tx.step < s]
    first = pd.concat([past.groupby("src").step.min(), past.groupby("dst").step.min()]
                      ).groupby(level=0).min()
    ids = first.index.to_numpy()
    keep = stable_unit(ids) < LABEL_COVERAGE
    ids, first = ids[keep], first.to_numpy()[keep]
    fraud = nodes.set_index("nodeid").isFraud.reindex(ids).to_numpy() == 1
    n = len(ids)
    created = step_ms(first)
    order = np.argsort(name(ids).astype(str))
    cols = {"network": [network] * n, "network_type": ["mainnet"] * n, "address": name(ids),
            "label": np.where(fraud, "money_laundering", "customer"),
            "address_type": np.where(fraud, "launderer", "individual"),
            "address_subtype": [""] * n, "trust_level": ["verified"] * n,
            "source": ["amlsim_ground_truth"] * n,
            "risk_level": np.where(fraud, "high", "low"),
            "confidence_score": np.ones(n, dtype=np.float32), "created_timestamp": created,
            "updated_timestamp": created}
    return _table(cols, contract.LABELS_SCHEMA).take(order)


def write_date(batch: Batch, labels: pa.Table, input_dir: Path) -> Path:
    """Lay the date out as `aml-miner download` does (input_dir/{date}/), atomically."""
    target = date_dir(input_dir, batch.processing_date)
    target.parent.mkdir(parents=True, exist_ok=True)
    with staging_dir(target) as tmp:
        meta = _write_batch_files(batch, tmp)
        write_parquet(labels, tmp / contract.LABELS_FILE)
        digests = {**meta["sha256"], **{n: sha256_file(tmp / n) for n in (
            contract.META_FILE, contract.LABELS_FILE)}}
        source = {"generator": "IBM AMLSim sample run 20K_fanin200cycle200, converted by "
                               "bench/independent_history.py",
                  "url": DEFAULT_URL, "sha256": SHA256, "network": batch.network,
                  "processing_date": batch.processing_date,
                  "window_days": int(batch.window_days),
                  "prefix": f"snapshots/{batch.network}/{batch.processing_date}/"
                            f"{batch.window_days}/"}
        write_manifest(tmp, source, [file_entry(tmp / n, d) for n, d in digests.items()], [])
        publish(tmp, target)
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path,
                        help="a local copy of 20K_fanin200cycle200.tgz (default: download it)")
    parser.add_argument("--output", type=Path, default=Path("/work/data/independent/input"))
    parser.add_argument("--first-step", type=int, default=60,
                        help="simulation step of the first processing date (default 60)")
    parser.add_argument("--dates", type=int, default=30)
    parser.add_argument("--window-days", type=int, default=7)
    args = parser.parse_args(argv)
    nodes, tx = read_source(args.source)
    last = args.first_step + args.dates - 1
    if args.first_step - args.window_days < 0 or last > int(tx.step.max()) + 1:
        sys.exit(f"steps {args.first_step}..{last} do not fit the run's steps "
                 f"0..{int(tx.step.max())} with a {args.window_days}-day window")
    args.output.mkdir(parents=True, exist_ok=True)
    for s in range(args.first_step, last + 1):
        started = time.perf_counter()
        batch = build_date(nodes, tx, s, args.window_days, NETWORK)
        labels = labels_at(nodes, tx, s, NETWORK)
        folder = write_date(batch, labels, args.output)
        fraud = set(nodes.nodeid[nodes.isFraud == 1])
        lab = dict(zip(labels.column("address").to_pylist(),
                       labels.column("risk_level").to_pylist()))
        risk = [lab.get(a) for a in batch.alerts.column("address").to_pylist()]
        labelled = [r for r in risk if r]
        print(f"{batch.processing_date}: {batch.alerts.num_rows} alerts "
              f"({len(labelled)} labelled, {sum(r == 'high' for r in labelled)} positive), "
              f"{batch.features.num_rows} addresses, {batch.clusters.num_rows} clusters, "
              f"{batch.money_flows.num_rows} flows, {labels.num_rows} label rows "
              f"-> {folder} in {time.perf_counter() - started:.1f} s", flush=True)
        del fraud
    return 0


if __name__ == "__main__":
    sys.exit(main())
