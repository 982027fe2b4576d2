"""address_labels.parquet of a sample day: labels of part of the day's addresses.

A label row is a pure function of (network, seed, address id): the same address
gets the same rows on every date, so a network's label file can merge dates.
Coverage is well below 100 %, launderers are labelled a bit more often, and a
share of the labels is wrong (benign marked high risk and the reverse).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from shared.contract import LABELS_SCHEMA
from shared.samplegen.columns import pick, segment_index, stable_bits, stable_uniform
from shared.samplegen.population import N_BENIGN, Day, Population

COVERAGE = np.array([0.30, 0.55, 0.50, 0.50, 0.55, 0.55, 0.55, 0.55, 0.55, 0.55])
LABEL_ERROR = np.array([0.04, 0.14, 0.12, 0.10, 0.12, 0.12, 0.12, 0.12, 0.12, 0.12])
SOURCES = ("sanctions_list", "community_reports", "exchange_attribution",
           "internal_heuristics", "law_enforcement")
BAD_LABELS = ("ransomware", "darknet_market", "scam", "mixer_service", "sanctioned_entity",
              "theft")
BAD_TYPES = ("ransomware", "marketplace", "scam", "mixer", "sanctioned", "theft")
GOOD_LABELS = ("retail_wallet", "exchange_hot_wallet", "merchant", "whale_wallet")
GOOD_TYPES = ("wallet", "exchange", "merchant", "wallet")
TRUST_BAD = ("blacklisted", "blacklisted", "verified", "community", "official", "unverified")
TRUST_GOOD = ("verified", "community", "official", "unverified")
LABEL_EPOCH_MS = 1_672_531_200_000  # 2023-01-01
STREAM_COVER, STREAM_ROWS, STREAM_SOURCE, STREAM_ROW = 10, 11, 12, 20
DAY_MS = 86_400_000


def _rows(pop: Population, key: int) -> tuple[np.ndarray, np.ndarray]:
    """(population row, rank) of each label row; 1-3 rows per labelled address."""
    labelled = np.flatnonzero(stable_uniform(pop.ids, key, STREAM_COVER) < COVERAGE[pop.archetype])
    u = stable_uniform(pop.ids[labelled], key, STREAM_ROWS)
    count = 1 + (u < 0.25) + (u < 0.07)
    rank = segment_index(np.zeros(len(labelled)), count)
    return np.repeat(labelled, count), rank


def build(pop: Population, day: Day) -> pa.Table:
    """The labels table of the day's addresses."""
    key, network = day.key, day.network
    rows, rank = _rows(pop, key)
    ids, arch = pop.ids[rows], pop.archetype[rows]
    stream = STREAM_ROW + 10 * rank.astype(np.int64)
    u = {name: _per_row(ids, key, stream + j) for j, name in enumerate(
        ("error", "level", "kind", "trust", "conf", "created", "updated"))}
    positive = (arch >= N_BENIGN) ^ (u["error"] < LABEL_ERROR[arch])
    level = np.where(positive, 2 + (u["level"] < 0.4), (u["level"] < 0.35).astype(np.int64))
    bad_kind = (u["kind"] * len(BAD_LABELS)).astype(np.int64)
    good_kind = np.where(arch < N_BENIGN, arch, 0)
    source = (stable_bits(ids, key, STREAM_SOURCE) % np.uint64(len(SOURCES))).astype(np.int64)
    created = LABEL_EPOCH_MS + np.floor(u["created"] * 730 * DAY_MS)
    n = len(rows)
    cols = {
        "network": pick((network,), np.zeros(n, dtype=np.int64)),
        "network_type": pick(("mainnet",), np.zeros(n, dtype=np.int64)),
        "address": pop.address.take(pa.array(rows)),
        "label": _either(positive, BAD_LABELS, bad_kind, GOOD_LABELS, good_kind),
        "address_type": _either(positive, BAD_TYPES, bad_kind, GOOD_TYPES, good_kind),
        "address_subtype": pick(("",), np.zeros(n, dtype=np.int64)),
        "trust_level": _either(positive, TRUST_BAD, (u["trust"] * len(TRUST_BAD)).astype(np.int64),
                               TRUST_GOOD, (u["trust"] * len(TRUST_GOOD)).astype(np.int64)),
        "source": pick(SOURCES, (source + rank) % len(SOURCES)),
        "risk_level": pick(("low", "medium", "high", "critical"), level),
        "confidence_score": pa.array((0.5 + 0.5 * u["conf"]).astype(np.float32)),
        "created_timestamp": pa.array(created.astype(np.uint64)),
        "updated_timestamp": pa.array((created + np.floor(u["updated"] * 180 * DAY_MS)).astype(
            np.uint64)),
    }
    return pa.Table.from_arrays([cols[f.name] for f in LABELS_SCHEMA], schema=LABELS_SCHEMA)


def _per_row(ids: np.ndarray, key: int, streams: np.ndarray) -> np.ndarray:
    """Stable uniforms that differ per (address, stream) pair."""
    mixed = np.asarray(ids, dtype=np.uint64) * np.uint64(1_000_003) + streams.astype(np.uint64)
    return stable_uniform(mixed, key, 99)


def _either(flag: np.ndarray, yes_vocab, yes_idx, no_vocab, no_idx) -> pa.Array:
    vocab = tuple(yes_vocab) + tuple(no_vocab)
    return pick(vocab, np.where(flag, yes_idx, len(yes_vocab) + no_idx))
