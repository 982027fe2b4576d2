"""money_flows.parquet of a sample day: directed address pairs with launderers sending
more often to each other (chains, cycles) and everyone sending to exchanges."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from shared.contract import MONEY_FLOWS_SCHEMA
from shared.samplegen.columns import (
    decimal_native, decimal_usd, fixed_lists, multinomial_rows, pick, window_column)
from shared.samplegen.features import DAY_MS, LOG_AMOUNT, NATIVE_ASSET
from shared.samplegen.population import N_BENIGN, Day, Population

OUT_RATE = np.array([0.1, 2.5, 0.6, 0.3, 0.8, 0.6, 0.2, 2.0, 1.0, 1.8])  # extra out-edges
TO_ILLICIT = np.where(np.arange(10) >= N_BENIGN, 0.35, 0.02)
TO_EXCHANGE = 0.2
PRICE_USD = {"bitcoin": 65_000.0, "ethereum": 3_000.0}


def edges(pop: Population, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Unique directed (src, dst) row pairs, sorted, without self-loops."""
    n = len(pop)
    k = 1 + np.minimum(rng.poisson(OUT_RATE[pop.archetype]), 11)
    src = np.repeat(np.arange(n), k)
    dst = rng.integers(0, n, size=len(src))
    illicit, exchange = np.flatnonzero(pop.illicit), np.flatnonzero(pop.archetype == 1)
    to_bad = rng.random(len(src)) < TO_ILLICIT[pop.archetype[src]]
    if len(illicit):
        dst = np.where(to_bad, illicit[rng.integers(0, len(illicit), len(src))], dst)
    to_exchange = ~to_bad & (rng.random(len(src)) < TO_EXCHANGE)
    if len(exchange):
        dst = np.where(to_exchange, exchange[rng.integers(0, len(exchange), len(src))], dst)
    cyc = pop.archetype[src] == 8  # cycles send back: make their edges two-way
    src, dst = np.concatenate([src, dst[cyc]]), np.concatenate([dst, src[cyc]])
    code = np.unique(src.astype(np.int64) * n + dst)
    src, dst = code // n, code % n
    keep = src != dst
    return src[keep], dst[keep]


def _patterns(tx: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Hour-of-day (24) and weekday (7) histograms that each sum to the pair's tx_count."""
    curve = np.cos(2 * np.pi * (np.arange(24) - 14) / 24.0).astype(np.float32)
    strength = rng.normal(0.8, 0.6, (len(tx), 1)).astype(np.float32)
    hourly = multinomial_rows(rng, tx, strength * curve[None, :])
    weekly = multinomial_rows(rng, tx, np.zeros((len(tx), 7), dtype=np.float32))
    return hourly, weekly


def build(pop: Population, rng: np.random.Generator,
          day: Day) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """The money flows table and its (src, dst) population rows."""
    network, window_days = day.network, day.window_days
    src, dst = edges(pop, rng)
    m = len(src)
    tx = 1 + rng.poisson(np.exp(0.5 + rng.standard_normal(m)))
    usd = tx * np.exp(LOG_AMOUNT[pop.archetype[src]] + rng.standard_normal(m))
    usd = np.round(usd, 2)
    reverse = _reverse_usd(src, dst, usd, len(pop))
    two_way = reverse > 0
    larger = np.maximum(np.maximum(usd, reverse), 1e-9)
    ratio = np.where(two_way, np.minimum(usd, reverse) / larger, 0.0)
    days, first, last = _times(tx, rng, day)
    assets = NATIVE_ASSET.get(network, (network[:4].upper(),))
    hourly, weekly = _patterns(tx, rng)
    cols = {
        "from_address": pop.address.take(pa.array(src)),
        "to_address": pop.address.take(pa.array(dst)),
        "tx_count": pa.array(tx.astype(np.uint64)),
        "amount_sum": decimal_native(usd / PRICE_USD.get(network, 1.0)),
        "amount_usd_sum": decimal_usd(usd),
        "first_seen_timestamp": pa.array(first.astype(np.uint64)),
        "last_seen_timestamp": pa.array(last.astype(np.uint64)),
        "active_days": pa.array(days.astype(np.uint32)),
        "unique_assets": pa.array(np.ones(m, dtype=np.uint32)),
        "avg_tx_size_usd": decimal_usd(usd / tx),
        "dominant_asset": pick(assets, rng.integers(0, len(assets), m) * (rng.random(m) < 0.3)),
        "hourly_pattern": fixed_lists(hourly, pa.uint16()),
        "weekly_pattern": fixed_lists(weekly, pa.uint16()),
        "reciprocity_ratio": pa.array(ratio.astype(np.float32)),
        "is_bidirectional": pa.array(two_way),
        "window_days": window_column(window_days, m),
        # money_flows carries its date as text (SOT_CONTRACT.md section 2).
        "processing_date": pa.nulls(m, pa.string()).fill_null(day.processing_date),
    }
    schema = MONEY_FLOWS_SCHEMA
    table = pa.Table.from_arrays([cols[f.name] for f in schema], schema=schema)
    return table, src, dst


def _times(tx: np.ndarray, rng: np.random.Generator, day: Day):
    """Active days and first/last seen (ms) of each pair, inside the window."""
    m = len(tx)
    days = np.minimum(np.minimum(tx, day.window_days), 1 + rng.poisson(1.0, m))
    last = day.end_ms - 1 - np.floor(rng.random(m) * (day.window_days - days + 1) * DAY_MS * 0.999)
    spread = rng.random(m) * (days - 1) * DAY_MS + (tx > 1) * rng.random(m) * 3_600_000
    return days, last - np.floor(spread), last


def _reverse_usd(src: np.ndarray, dst: np.ndarray, usd: np.ndarray, n: int) -> np.ndarray:
    """USD of the opposite-direction pair of each edge, 0 when there is none."""
    code = src * n + dst  # sorted ascending by construction
    rev = dst * n + src
    pos = np.searchsorted(code, rev)
    pos = np.minimum(pos, len(code) - 1)
    found = (len(code) > 0) & (code[pos] == rev)
    return np.where(found, usd[pos], 0.0)
