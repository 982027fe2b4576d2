"""alerts.parquet of a sample day: several alerts per alerted address, typologies that
correlate with the hidden behaviour but imperfectly, confidence a little higher for
launderers, and every column of the contract."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from shared.contract import ALERTS_SCHEMA, TYPOLOGIES
from shared.samplegen.columns import (
    date_column, decimal_usd, hex_strings, join, number_strings, pick, ragged_lists,
    segment_index, sigmoid, uuid5_strings, window_column)
from shared.samplegen.population import N_BENIGN, Day, Population

DAY_MS = 86_400_000
# uuid5 namespace of alert ids: the producer's is not published, so ours is fixed here.
ALERT_NAMESPACE = uuid.NAMESPACE_OID
_T = {name: i for i, name in enumerate(TYPOLOGIES)}
# Typologies each archetype tends to trigger, with their weight over 1 (the rest weigh 1).
AFFINITY = {
    0: {"TIME_BASED_PATTERN": 2, "PROXIMITY_RISK": 2, "VELOCITY_ANOMALY": 1.5,
        "FRESH_TO_EXCHANGE": 1.5},
    1: {"HUB_ANOMALY": 5, "MOTIF_FANIN": 4, "MOTIF_FANOUT": 3, "FRESH_TO_EXCHANGE": 3,
        "RAPID_FANOUT": 2},
    2: {"STRUCTURING": 3, "INTRADAY_STRUCTURING": 3, "MOTIF_FANIN": 3, "SMURFING_NETWORK": 2},
    3: {"VELOCITY_ANOMALY": 4, "LAYERING_PATH": 2, "PING_PONG": 2},
    4: {"PEEL_CHAIN": 6, "LAYERING_PATH": 4, "RAPID_FANOUT": 2},
    5: {"STRUCTURING": 6, "INTRADAY_STRUCTURING": 5, "SMURFING_NETWORK": 3},
    6: {"MOTIF_FANIN": 6, "SMURFING_NETWORK": 4, "HUB_ANOMALY": 2},
    7: {"MOTIF_FANOUT": 6, "RAPID_FANOUT": 5, "LAYERING_PATH": 2},
    8: {"CYCLE_DETECTION": 6, "PING_PONG": 5, "LAYERING_PATH": 2},
    9: {"MIXING_BEHAVIOR": 6, "PROXIMITY_RISK": 3, "FRESH_TO_EXCHANGE": 2,
        "TIME_BASED_PATTERN": 2},
}
PATTERN_TYPE = ("path", "amount", "cycle", "graph", "flow", "motif", "graph", "amount", "temporal",
                "temporal", "cycle", "path", "motif", "proximity", "motif", "motif")
INDICATORS = (
    ("long_chain", "sequential_transfers", "decreasing_amounts"),
    ("below_threshold_amounts", "repeated_amounts", "many_small_deposits"),
    ("back_and_forth", "short_interval", "reciprocal_flow"),
    ("high_degree", "many_counterparties", "volume_concentration"),
    ("new_address", "exchange_destination", "short_holding_time"),
    ("fan_out", "short_interval", "many_recipients"),
    ("equal_amounts", "coinjoin_like", "many_counterparties"),
    ("below_threshold_amounts", "same_day_splits", "repeated_amounts"),
    ("high_velocity", "short_holding_time", "volume_spike"),
    ("night_activity", "regular_intervals", "burst_activity"),
    ("circular_flow", "reciprocal_flow", "sequential_transfers"),
    ("multi_hop", "sequential_transfers", "decreasing_amounts"),
    ("many_small_deposits", "coordinated_senders", "fan_in"),
    ("near_flagged_address", "shared_counterparties", "high_risk_neighbourhood"),
    ("fan_in", "many_senders", "volume_concentration"),
    ("fan_out", "many_recipients", "rapid_dispersal"),
)
ADDRESS_TYPES = ("unknown", "wallet", "exchange", "merchant", "service", "mixer")
TRUE_TYPE = np.array([1, 2, 3, 1, 1, 1, 4, 4, 1, 5])  # per archetype
SUBTYPES = ("", "", "hot_wallet", "payment_processor", "", "coinjoin")  # per address type


def severity_index(confidence: np.ndarray) -> np.ndarray:
    """0 low, 1 medium, 2 high, 3 critical, from confidence thresholds 0.6/0.75/0.9."""
    return np.searchsorted(np.array([0.6, 0.75, 0.9], dtype=np.float32), confidence, side="right")


@dataclass
class AlertFacts:
    """What clusters need to know of the alerts, kept as arrays (not re-read from Arrow)."""

    alert_id: pa.Array
    address_row: np.ndarray   # population row of each alert
    group_start: np.ndarray   # first alert of each alerted address
    group_size: np.ndarray
    typology: np.ndarray
    confidence: np.ndarray    # float32
    volume: np.ndarray        # USD
    timestamp: np.ndarray     # ms, hidden: alerts.parquet has no time column


def _affinity_matrix() -> np.ndarray:
    boost = np.zeros((len(AFFINITY), len(TYPOLOGIES)))
    for arch, weights in AFFINITY.items():
        for name, weight in weights.items():
            boost[arch, _T[name]] = weight - 1.0
    return boost


def _typologies(pop: Population, rng: np.random.Generator) -> np.ndarray:
    """Distinct typologies per alerted address (alert ids are address-typology-date)."""
    rows = pop.alerted
    boost = _affinity_matrix()[pop.archetype[rows]] * pop.intensity[rows, None]
    keys = np.log1p(boost).astype(np.float32) + rng.gumbel(size=boost.shape).astype(np.float32)
    order = np.argsort(-keys, axis=1, kind="stable")
    rank = segment_index(np.zeros(len(rows)), pop.alert_counts)
    return order[np.repeat(np.arange(len(rows)), pop.alert_counts), rank].astype(np.int64)


def _confidence(pop: Population, arow: np.ndarray, typ: np.ndarray, rng) -> np.ndarray:
    matches = _affinity_matrix()[pop.archetype[arow], typ] > 0
    illicit = pop.archetype[arow] >= N_BENIGN
    logit = -0.1 + 0.7 * illicit * pop.intensity[arow] + 0.4 * matches
    logit += 0.8 * rng.standard_normal(len(arow))
    return np.clip(sigmoid(logit), 0.05, 0.995).astype(np.float32)


def _indicators(typ: np.ndarray, rng) -> pa.Array:
    vocab = sorted({name for names in INDICATORS for name in names})
    table = np.array([[vocab.index(n) for n in names] for names in INDICATORS])
    count = 1 + rng.binomial(2, 0.45, size=len(typ))
    offsets = np.concatenate([[0], np.cumsum(count)])
    slot = segment_index(np.zeros(len(typ)), count)
    values = table[np.repeat(typ, count), slot]
    return ragged_lists(offsets, pick(vocab, values))


def _texts(pop, arow, typ, volume, rng, window_days: int) -> dict:
    long_paths = np.isin(typ, [_T["PEEL_CHAIN"], _T["LAYERING_PATH"]])
    hops = 1 + rng.poisson(np.where(long_paths, 3.0, 0.8))
    tx = 2 + rng.poisson(np.exp(1.5 + 0.8 * rng.standard_normal(len(typ))))
    peers = 1 + rng.binomial(tx - 1, 0.6)
    typ_names = pick(TYPOLOGIES, typ)
    titles = pick([t.replace("_", " ").lower() for t in TYPOLOGIES], typ)
    address = pop.address.take(pa.array(arow))
    vol = number_strings(volume, 2)
    desc = join(titles, " pattern on ", address, ": ", number_strings(tx), " transactions, ",
                vol, " USD in ", str(window_days), " days")
    evidence = join('{"typology": "', typ_names, '", "tx_count": ', number_strings(tx),
                    ', "volume_usd": ', vol, ', "counterparties": ', number_strings(peers),
                    ', "hops": ', number_strings(hops), ', "window_days": ', str(window_days), "}")
    return {"address": address, "typology_type": typ_names, "description": desc,
            "evidence_json": evidence}


def _suspected(pop: Population, arow: np.ndarray, rng) -> tuple[pa.Array, pa.Array]:
    """Detector's guess of the address type: mostly 'unknown', right half of the time."""
    guess = rng.integers(1, len(ADDRESS_TYPES), size=len(arow))
    guess = np.where(rng.random(len(arow)) < 0.5, TRUE_TYPE[pop.archetype[arow]], guess)
    kind = np.where(rng.random(len(arow)) < 0.35, guess, 0)
    return pick(ADDRESS_TYPES, kind), pick(SUBTYPES, kind)


def _pattern_ids(arow: np.ndarray, typ: np.ndarray, rng, key: int) -> pa.Array:
    code = arow.astype(np.uint64) * np.uint64(31) + typ.astype(np.uint64)
    code = (code ^ np.uint64(key & 0xFFFFFFFF)) * np.uint64(2654435761)
    ids = join(pick([t.lower() for t in TYPOLOGIES], typ), "_", hex_strings(code, 8))
    empty = pa.array(rng.random(len(arow)) < 0.6)
    return pa.compute.if_else(empty, pa.scalar(""), ids)


def build(pop: Population, volume_by_row: np.ndarray, rng: np.random.Generator, day: Day):
    """The alerts table and the facts clusters are built from."""
    arow = np.repeat(pop.alerted, pop.alert_counts)
    typ = _typologies(pop, rng)
    conf = _confidence(pop, arow, typ, rng)
    share = rng.beta(0.8, 2.5, size=len(arow))
    volume = volume_by_row[arow] * share + rng.exponential(50.0, len(arow))
    cols = _texts(pop, arow, typ, volume, rng, day.window_days)
    cols["alert_id"] = uuid5_strings(join(cols["address"], "-", cols["typology_type"], "-",
                                          day.processing_date), ALERT_NAMESPACE)
    cols["pattern_id"] = _pattern_ids(arow, typ, rng, day.key)
    cols["pattern_type"] = pick(PATTERN_TYPE, typ)
    cols["severity"] = pick(("low", "medium", "high", "critical"), severity_index(conf))
    cols["suspected_address_type"], cols["suspected_address_subtype"] = _suspected(pop, arow, rng)
    cols["alert_confidence_score"] = pa.array(conf)
    cols["volume_usd"] = decimal_usd(volume)
    cols["risk_indicators"] = _indicators(typ, rng)
    cols["window_days"] = window_column(day.window_days, len(arow))
    cols["processing_date"] = date_column(day.date_days, len(arow))
    table = pa.Table.from_arrays([cols[f.name] for f in ALERTS_SCHEMA], schema=ALERTS_SCHEMA)
    stamp = day.end_ms - 1 - np.floor(rng.random(len(arow)) * day.window_days * DAY_MS)
    starts = np.concatenate([[0], np.cumsum(pop.alert_counts)[:-1]])
    facts = AlertFacts(cols["alert_id"], arow, starts, pop.alert_counts, typ, conf,
                       np.round(volume, 2), stamp.astype(np.uint64))
    return table, facts
