"""features.parquet of a sample day: one row per address, behaviour shifted by archetype.

Every address gets latent signals z = noise + effect(archetype) * intensity; each
feature is a noisy transform of a few signals, so launderers differ on average
while exchanges, merchants and whales overlap them on the same features.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from shared.contract import FEATURES_SCHEMA, LEGACY_FEATURE_COLUMNS
from shared.samplegen.columns import (
    date_column, decimal_usd, fixed_lists, multinomial_rows, pick, sigmoid, window_column)
from shared.samplegen.population import Day, Population

DAY_MS = 86_400_000
SIGNALS = ("structuring", "velocity", "burst", "reciprocity", "small_tx", "fan_in",
           "fan_out", "newness", "night", "mixing", "chain")
_S = {name: i for i, name in enumerate(SIGNALS)}
EFFECT_SCALE = 1.0
# Rows: retail, exchange, merchant, whale, peel_chain, structuring, fan_in, fan_out, cycle, mixer.
EFFECT = np.array([
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.3, 1.5, 0.5, 0.4, 0.5, 2.0, 2.0, 0.0, 0.6, 0.3, 0.4],
    [1.0, 0.5, 0.3, 0.2, 1.5, 1.5, 0.0, 0.0, 0.0, 0.2, 0.0],
    [0.0, 0.8, 1.0, 0.2, -1.0, 0.0, 0.3, 0.3, 0.2, 0.0, 0.5],
    [0.3, 1.2, 0.5, 0.0, 0.0, 0.0, 0.7, 1.0, 0.4, 0.2, 2.0],
    [2.0, 0.5, 1.0, 0.0, 1.5, 0.3, 0.3, 0.5, 0.4, 0.5, 0.0],
    [0.5, 0.3, 0.8, 0.0, 0.8, 2.0, 0.0, 0.8, 0.4, 0.3, 0.3],
    [0.3, 1.0, 0.8, 0.0, 0.3, 0.0, 2.0, 0.8, 0.4, 0.3, 0.5],
    [0.2, 0.8, 0.3, 2.5, 0.2, 0.3, 0.3, 0.5, 0.3, 0.5, 1.0],
    [0.5, 0.6, 0.3, 0.3, 0.3, 1.0, 1.0, 0.5, 1.5, 2.0, 0.8],
])
LOG_TX = np.array([2.3, 6.0, 4.5, 2.0, 2.8, 3.5, 3.8, 3.8, 3.0, 4.3])
LOG_AMOUNT = np.array([5.0, 7.0, 4.5, 10.0, 7.5, 8.4, 6.0, 6.0, 7.3, 6.8])
BOT_LIKE = np.array([0, 1, 0, 0, 0, 0, 0, 0, 0, 1], dtype=bool)  # flat 24h profile
NATIVE_ASSET = {"bitcoin": ("BTC",), "ethereum": ("ETH", "USDT", "USDC", "DAI")}


class Draws:
    """Per-table random draws with float32 normals to keep 1M-row memory small."""

    def __init__(self, rng: np.random.Generator, n: int):
        self.rng, self.n = rng, n

    def normal(self, shape=None) -> np.ndarray:
        return self.rng.standard_normal(shape or self.n, dtype=np.float32).astype(np.float64)

    def uniform(self) -> np.ndarray:
        return self.rng.random(self.n)


def signals(pop: Population, d: Draws) -> np.ndarray:
    """Latent (n, len(SIGNALS)) matrix: noise plus the archetype's effect."""
    z = d.rng.standard_normal((len(pop), len(SIGNALS)), dtype=np.float32)
    z += (EFFECT[pop.archetype] * (EFFECT_SCALE * pop.intensity)[:, None]).astype(np.float32)
    return z


def _counts(pop: Population, z: np.ndarray, d: Draws, window_days: int) -> dict:
    arch = pop.archetype
    scale = 0.7 * np.log(window_days / 7.0)
    total = np.exp(LOG_TX[arch] + scale + 1.0 * d.normal() + 0.3 * z[:, _S["velocity"]])
    total = np.clip(np.rint(total), 1, 5_000_000).astype(np.int64)
    in_share = sigmoid(0.8 * (z[:, _S["fan_in"]] - z[:, _S["fan_out"]]) + 0.5 * d.normal())
    tx_in = np.rint(total * in_share).astype(np.int64)
    deg_in = _uniques(tx_in, 0.8 * z[:, _S["fan_in"]] + 0.7 * d.normal() - 0.5)
    deg_out = _uniques(total - tx_in, 0.8 * z[:, _S["fan_out"]] + 0.7 * d.normal() - 0.5)
    return {"tx_total": total, "tx_in": tx_in, "tx_out": total - tx_in,
            "deg_in": deg_in, "deg_out": deg_out}


def _uniques(tx: np.ndarray, logit: np.ndarray) -> np.ndarray:
    """Distinct counterparties: a share of the transactions, at least one if any."""
    unique = np.rint(tx * sigmoid(logit)).astype(np.int64)
    return np.where(tx > 0, np.maximum(unique, 1), 0)


def _amounts(pop: Population, z: np.ndarray, c: dict, d: Draws) -> dict:
    avg_in = np.exp(LOG_AMOUNT[pop.archetype] + 1.1 * d.normal())
    avg_out = avg_in * np.exp(0.3 * d.normal())
    avg_in = np.where(c["tx_in"] > 0, avg_in, 0.0)
    avg_out = np.where(c["tx_out"] > 0, avg_out, 0.0)
    cv = np.exp(-0.1 + 0.5 * d.normal() - 0.4 * z[:, _S["mixing"]])
    total_in, total_out = c["tx_in"] * avg_in, c["tx_out"] * avg_out
    avg = (total_in + total_out) / np.maximum(c["tx_total"], 1)
    spread = np.log1p(cv)
    return {"avg_in": avg_in, "avg_out": avg_out, "cv": cv, "avg": avg,
            "total_in": total_in, "total_out": total_out, "total": total_in + total_out,
            "max": avg * np.exp(spread * (1.5 + np.abs(d.normal()))),
            "min": avg * np.exp(-spread * (1.5 + np.abs(d.normal()))),
            "median_in": avg_in * np.exp(-0.5 * spread ** 2),
            "median_out": avg_out * np.exp(-0.5 * spread ** 2)}


def _hour_curve() -> np.ndarray:
    return np.cos(2 * np.pi * (np.arange(24) - 14) / 24.0)


def _activity(pop: Population, z: np.ndarray, c: dict, d: Draws) -> dict:
    """Hourly (24) and weekday (7) transaction histograms and their summaries."""
    night = sigmoid(1.1 * z[:, _S["night"]] - 1.6)
    flat = np.where(BOT_LIKE[pop.archetype], 0.3, 1.0)
    strength = ((1 - 2 * night) * flat * 1.3).astype(np.float32)
    logits = strength[:, None] * _hour_curve().astype(np.float32)[None, :]
    logits += 0.5 * d.rng.standard_normal((len(pop), 24), dtype=np.float32)
    hourly = _histogram(logits, c["tx_total"], d)
    weekend = -0.2 + 0.4 * d.normal() + 0.3 * z[:, _S["night"]]
    week_logits = np.outer(weekend.astype(np.float32), np.array([0, 0, 0, 0, 0, 1, 1], np.float32))
    week_logits += 0.4 * d.rng.standard_normal((len(pop), 7), dtype=np.float32)
    daily = _histogram(week_logits, c["tx_total"], d)
    return {"hourly": hourly, "daily": daily}


def _histogram(logits: np.ndarray, totals: np.ndarray, d: Draws) -> np.ndarray:
    """Split each row's total over the bins (multinomial), capped at uint16."""
    return multinomial_rows(d.rng, totals, logits)


def _entropy(hist: np.ndarray) -> np.ndarray:
    total = hist.sum(axis=1, dtype=np.float64)
    p = hist / np.maximum(total, 1)[:, None]
    logs = np.log(np.where(p > 0, p, 1.0))
    return -(p * logs).sum(axis=1)


def _share(hist: np.ndarray, columns) -> np.ndarray:
    total = hist.sum(axis=1, dtype=np.float64)
    return hist[:, columns].sum(axis=1, dtype=np.float64) / np.maximum(total, 1)


def _linear(z: np.ndarray, d: Draws, bias: float, noise: float, **weights: float) -> np.ndarray:
    """bias + weighted signals + Gaussian noise: the logit most features are built from."""
    out = bias + noise * d.normal() if noise else np.full(d.n, bias)
    for name, weight in weights.items():
        out += weight * z[:, _S[name]]
    return out


def _score(z: np.ndarray, d: Draws, bias: float, noise: float, **weights: float) -> pa.Array:
    """A float32 score in (0, 1): sigmoid of a noisy weighted sum of signals."""
    return _f32(sigmoid(_linear(z, d, bias, noise, **weights)))


def _f32(x) -> pa.Array:
    return pa.array(np.asarray(x, dtype=np.float32))


def _u32(x) -> pa.Array:
    return pa.array(np.clip(np.rint(x), 0, 2**32 - 1).astype(np.uint32))


def _topology_columns(c: dict, z: np.ndarray, d: Draws) -> tuple[dict, np.ndarray]:
    recip = sigmoid(1.2 * z[:, _S["reciprocity"]] - 2.0 + 0.3 * d.normal())
    overlap = np.rint(recip * np.minimum(c["deg_in"], c["deg_out"]))
    unique = np.maximum(c["deg_in"] + c["deg_out"] - overlap, 1)
    cols = {"degree_in": _u32(c["deg_in"]), "degree_out": _u32(c["deg_out"]),
            "degree_total": _u32(c["deg_in"] + c["deg_out"]),
            "unique_counterparties": _u32(unique)}
    return cols, recip


def _volume_columns(a: dict) -> dict:
    return {"total_in_usd": decimal_usd(a["total_in"]),
            "total_out_usd": decimal_usd(a["total_out"]),
            "net_flow_usd": decimal_usd(a["total_in"] - a["total_out"]),
            "total_volume_usd": decimal_usd(a["total"]),
            "avg_tx_in_usd": decimal_usd(a["avg_in"]), "avg_tx_out_usd": decimal_usd(a["avg_out"]),
            "median_tx_in_usd": decimal_usd(a["median_in"]),
            "median_tx_out_usd": decimal_usd(a["median_out"]),
            "max_tx_usd": decimal_usd(a["max"]), "min_tx_usd": decimal_usd(a["min"])}


def _distribution_columns(a: dict, z: np.ndarray, d: Draws) -> dict:
    std = a["avg"] * a["cv"]
    skew = 3.0 * a["cv"] + 0.5 * d.normal()
    conc = sigmoid(0.6 * z[:, _S["fan_in"]] - 0.5 * z[:, _S["fan_out"]] + 0.5 * d.normal())
    return {"amount_variance": pa.array(std ** 2), "amount_skewness": pa.array(skew),
            "amount_kurtosis": pa.array(skew ** 2 + 1.0 + np.exp(0.5 * d.normal())),
            "volume_std": pa.array(std), "volume_cv": pa.array(a["cv"]),
            "flow_concentration": pa.array(conc)}


def _temporal_columns(c: dict, a: dict, z, d: Draws, window_days: int) -> dict:
    logit = 0.6 * np.log(c["tx_total"]) - 1.0 + d.normal() - 0.5 * z[:, _S["burst"]]
    days = np.clip(np.rint(window_days * sigmoid(logit)), 1, window_days)
    span = days + np.floor((window_days - days) * d.uniform())
    c["days"], c["span"] = days, span
    return {"tx_in_count": pa.array(c["tx_in"].astype(np.uint64)),
            "tx_out_count": pa.array(c["tx_out"].astype(np.uint64)),
            "tx_total_count": pa.array(c["tx_total"].astype(np.uint64)),
            "activity_days": _u32(days), "activity_span_days": _u32(span),
            "avg_daily_volume_usd": decimal_usd(a["total"] / days)}


def _behaviour_columns(h: dict, z: np.ndarray, d: Draws) -> dict:
    peak_hour = np.argmax(h["hourly"], axis=1).astype(np.uint8)
    peak_day = np.argmax(h["daily"], axis=1).astype(np.uint8)
    return {"peak_hour": pa.array(peak_hour), "peak_day": pa.array(peak_day),
            "regularity_score": _score(z, d, 0.3, 0.5, burst=-0.6),
            "burst_factor": _f32(np.exp(0.45 * z[:, _S["burst"]] + 0.3 + 0.2 * d.normal())),
            "_peak_hour": peak_hour, "_peak_day": peak_day}


def _flow_columns(recip: np.ndarray, z: np.ndarray, d: Draws) -> dict:
    return {"reciprocity_ratio": _f32(recip),
            "flow_diversity": _score(z, d, 0.0, 0.6, fan_out=0.5, mixing=0.3),
            "counterparty_concentration": _score(z, d, 0.0, 0.6, fan_in=-0.5, fan_out=-0.5),
            "concentration_ratio": _score(z, d, 0.0, 0.6, fan_out=-0.4, structuring=0.3),
            "velocity_score": _score(z, d, -0.8, 0.0, velocity=1.0),
            "structuring_score": _score(z, d, -1.6, 0.0, structuring=1.1)}


def _asset_columns(network: str, n: int, z: np.ndarray, d: Draws) -> dict:
    assets = NATIVE_ASSET.get(network, (network[:4].upper(),))
    lam = 0.2 + 0.3 * sigmoid(z[:, _S["mixing"]]) if len(assets) > 1 else np.zeros(n)
    n_in = 1 + np.minimum(d.rng.poisson(lam), len(assets) - 1)
    n_out = 1 + np.minimum(d.rng.poisson(lam), len(assets) - 1)
    weights = np.array([0.7] + [0.3 / max(len(assets) - 1, 1)] * (len(assets) - 1))
    weights /= weights.sum()
    dom_in = d.rng.choice(len(assets), size=n, p=weights)
    dom_out = np.where(d.uniform() < 0.8, dom_in, d.rng.choice(len(assets), size=n, p=weights))
    diversity = 1.0 - 1.0 / np.maximum(n_in, n_out) + 0.02 * np.abs(d.normal())
    return {"unique_assets_in": _u32(n_in), "unique_assets_out": _u32(n_out),
            "dominant_asset_in": pick(assets, dom_in), "dominant_asset_out": pick(assets, dom_out),
            "asset_diversity_score": _f32(np.clip(diversity, 0, 1))}


def _activity_columns(h: dict, b: dict, z: np.ndarray, d: Draws) -> dict:
    small = sigmoid(z[:, _S["small_tx"]] - 0.3 + 0.3 * d.normal())
    return {"hourly_activity": fixed_lists(h["hourly"], pa.uint16()),
            "daily_activity": fixed_lists(h["daily"], pa.uint16()),
            "peak_activity_hour": pa.array(b["_peak_hour"]),
            "peak_activity_day": pa.array(b["_peak_day"]),
            "hourly_entropy": _f32(_entropy(h["hourly"])),
            "daily_entropy": _f32(_entropy(h["daily"])),
            "weekend_transaction_ratio": _f32(_share(h["daily"], [5, 6])),
            "night_transaction_ratio": _f32(_share(h["hourly"], slice(0, 6))),
            "small_transaction_ratio": _f32(small),
            "consistency_score": _f32(sigmoid(0.3 - 0.4 * z[:, _S["burst"]] + 0.5 * d.normal()))}


def _graph_columns(c: dict, z: np.ndarray, d: Draws, n: int) -> dict:
    log_deg = np.log1p(c["deg_in"] + c["deg_out"])
    between = _linear(z, d, -4.0, 0.7, chain=0.8, mixing=0.4) + 0.3 * log_deg
    return {"pagerank": _f32(np.exp(0.9 * log_deg - np.log(n) + 0.3 * d.normal())),
            "betweenness": _f32(sigmoid(between)),
            "closeness": _f32(sigmoid(0.3 * log_deg - 1 + 0.5 * d.normal())),
            "clustering_coefficient": _score(z, d, -1.5, 0.6, reciprocity=0.9),
            "centrality_score": _f32(sigmoid(0.5 * log_deg - 2 + 0.4 * d.normal())),
            "kcore": _u32(np.maximum(1, log_deg * 1.5 * np.exp(0.3 * d.normal()))),
            "community_id": pa.array(d.rng.integers(0, n // 40 + 1, size=n).astype(np.uint32))}


def _khop_columns(c: dict, a: dict, z: np.ndarray, d: Draws) -> dict:
    k1 = np.maximum(c["deg_in"] + c["deg_out"], 1).astype(np.float64)
    chain = z[:, _S["chain"]]
    k2 = k1 * np.exp(1.5 + 0.5 * chain + 0.2 * z[:, _S["fan_out"]] + 0.5 * d.normal())
    k3 = k2 * np.exp(1.2 + 0.6 * chain + 0.5 * d.normal())
    v1 = a["total"] * np.exp(0.3 * d.normal())
    v2 = v1 * np.exp(1.0 + 0.4 * chain + 0.6 * d.normal())
    v3 = v2 * np.exp(0.8 + 0.4 * chain + 0.6 * d.normal())
    cap = 4e9
    return {"khop1_count": _u32(k1), "khop2_count": _u32(np.minimum(k2, cap)),
            "khop3_count": _u32(np.minimum(k3, cap)),
            "khop1_volume_usd": decimal_usd(v1),
            "khop2_volume_usd": decimal_usd(np.minimum(v2, 1e15)),
            "khop3_volume_usd": decimal_usd(np.minimum(v3, 1e15))}


def _advanced_columns(z: np.ndarray, d: Draws) -> dict:
    return {"flow_reciprocity_entropy": _score(z, d, -0.5, 0.5, reciprocity=0.8),
            "counterparty_stability": _score(z, d, 0.5, 0.6, newness=-0.7),
            "flow_burstiness": _score(z, d, -0.5, 0.5, burst=0.8),
            "transaction_regularity": _score(z, d, 0.2, 0.6, burst=-0.5),
            "amount_predictability": _score(z, d, -0.5, 0.5, mixing=0.9, structuring=0.4)}


def _support_columns(c: dict, z: np.ndarray, d: Draws, end_ms: int, window_days: int) -> dict:
    new = d.uniform() < sigmoid(1.2 * z[:, _S["newness"]] - 2.0)
    dormant = (d.uniform() < sigmoid(0.6 * z[:, _S["burst"]] - 3.0)) & ~new
    slack = (window_days - c["span"]) * d.uniform() + 0.9 * d.uniform()
    last = end_ms - 1 - np.floor(slack * DAY_MS)
    first = last - np.floor(np.maximum(c["span"] - d.uniform(), 0) * DAY_MS)
    history = np.floor(d.uniform() * 3 * 365 * DAY_MS)
    first = np.where(new, first, first - history - DAY_MS * window_days)
    return {"is_new_address": pa.array(new), "is_dormant_reactivated": pa.array(dormant),
            "unique_recipients_count": _u32(c["deg_out"]),
            "unique_senders_count": _u32(c["deg_in"]),
            "first_activity_timestamp": pa.array(np.maximum(first, 0).astype(np.uint64)),
            "last_activity_timestamp": pa.array(last.astype(np.uint64))}


def _legacy_columns(pop: Population, c: dict, z: np.ndarray, d: Draws) -> dict:
    """Columns of older SOT versions, noisy like the rest; never required downstream."""
    S, arch = _S, pop.archetype
    anomaly = z[:, [S["structuring"], S["velocity"], S["burst"], S["mixing"]]].mean(axis=1)
    flag = lambda logit: pa.array(d.uniform() < sigmoid(logit))  # noqa: E731
    log_deg = np.log1p(c["deg_in"] + c["deg_out"])
    cols = {
        "behavioral_anomaly_score": _f32(sigmoid(anomaly - 1 + 0.7 * d.normal())),
        "graph_anomaly_score": _score(z, d, -1.0, 0.7, chain=0.6),
        "neighborhood_anomaly_score": _score(z, d, -1.0, 0.8, fan_in=0.5),
        "global_anomaly_score": _f32(sigmoid(0.7 * anomaly - 1 + 0.8 * d.normal())),
        "outlier_transactions": _u32(d.rng.poisson(0.02 * c["tx_total"] * np.exp(0.3 * anomaly))),
        "suspicious_pattern_score": _f32(sigmoid(0.8 * anomaly - 1.2 + 0.8 * d.normal())),
        "is_exchange_like": flag(2.0 * (arch == 1) + 0.5 * log_deg - 4.5),
        "is_whale": flag(2.5 * (arch == 3) - 3.5),
        "is_mixer_like": flag(z[:, S["mixing"]] - 3.0),
        "is_contract_like": flag(np.full(len(pop), -3.5)),
        "is_high_volume_trader": flag(0.5 * log_deg - 3.5),
        "is_hub_address": flag(0.6 * log_deg - 4.0),
        "is_retail_active": flag(1.0 * (arch == 0) - 0.5),
        "is_dormant_account": flag(np.full(len(pop), -3.0)),
        "is_high_frequency_trader": flag(z[:, S["velocity"]] - 2.5),
        "is_cross_chain_active": flag(np.full(len(pop), -2.5)),
    }
    for name in ("completeness_score", "quality_score", "outlier_score", "confidence_score"):
        cols[name] = _f32(sigmoid(1.5 + 0.8 * d.normal()))
    assert tuple(cols) == LEGACY_FEATURE_COLUMNS
    return cols


def build(pop: Population, rng: np.random.Generator, day: Day,
          legacy: bool = False) -> tuple[pa.Table, np.ndarray]:
    """The features table, and each address's total volume in USD (alerts use it)."""
    d, n, window_days = Draws(rng, len(pop)), len(pop), day.window_days
    z = signals(pop, d)
    c = _counts(pop, z, d, window_days)
    a = _amounts(pop, z, c, d)
    h = _activity(pop, z, c, d)
    cols = {"address": pop.address}
    topo, recip = _topology_columns(c, z, d)
    cols |= topo | _volume_columns(a) | _distribution_columns(a, z, d)
    cols |= _temporal_columns(c, a, z, d, window_days)
    behaviour = _behaviour_columns(h, z, d)
    cols |= {k: v for k, v in behaviour.items() if not k.startswith("_")}
    cols |= _flow_columns(recip, z, d) | _asset_columns(day.network, n, z, d)
    cols |= _activity_columns(h, behaviour, z, d)
    del h
    cols |= _graph_columns(c, z, d, n) | _khop_columns(c, a, z, d) | _advanced_columns(z, d)
    cols |= _support_columns(c, z, d, day.end_ms, window_days)
    cols["window_days"] = window_column(window_days, n)
    cols["processing_date"] = date_column(day.date_days, n)
    schema = FEATURES_SCHEMA
    if legacy:
        extra = _legacy_columns(pop, c, z, d)
        cols |= extra
        schema = pa.schema(list(FEATURES_SCHEMA) + [pa.field(k, v.type) for k, v in extra.items()])
    table = pa.Table.from_arrays([cols[f.name] for f in schema], schema=schema)
    return table, a["total"]
