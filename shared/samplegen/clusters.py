"""clusters.parquet of a sample day: same_entity clusters of every address with two or
more alerts, plus same_pattern, related_network and time_based ones; a small share
reference alert ids that are not in alerts.parquet (expired upstream), which the
contract says must still be scored."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from shared.contract import CLUSTERS_SCHEMA, TYPOLOGIES
from shared.samplegen.alerts import ALERT_NAMESPACE, AlertFacts, severity_index
from shared.samplegen.columns import (
    date_column, decimal_usd, hex_strings, join, pick, ragged_lists, segment_index, uuid5_strings,
    window_column)
from shared.samplegen.population import Day, Population

PATTERN_SHARE = 1 / 40      # same_pattern clusters per alerted address
NETWORK_SHARE = 1 / 50      # related_network clusters per alerted address
ORPHAN_SHARE = 1 / 200      # time_based clusters none of whose alerts are in the batch
DANGLING_SHARE = 0.03       # other clusters with one extra id missing from the batch
SEVERITIES = ("low", "medium", "high", "critical")


@dataclass
class Part:
    """Clusters of one type: members as indices into the alert pool, addresses as rows."""

    kind: str
    names: pa.Array           # the variable part of cluster_id
    pattern_id: pa.Array
    member_offsets: np.ndarray
    members: np.ndarray
    address_offsets: np.ndarray
    address_rows: np.ndarray

    def __len__(self) -> int:
        return len(self.member_offsets) - 1


def _offsets(lengths: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def _blank(n: int) -> pa.Array:
    return pa.nulls(n, pa.string()).fill_null("")


def same_entity(facts: AlertFacts, pop: Population) -> Part:
    """One cluster per address with at least two alerts."""
    groups = np.flatnonzero(facts.group_size >= 2)
    sizes = facts.group_size[groups]
    members = segment_index(facts.group_start[groups], sizes)
    rows = pop.alerted[groups]
    return Part("same_entity", pop.address.take(pa.array(rows)), _blank(len(groups)),
                _offsets(sizes), members, np.arange(len(groups) + 1), rows)


def same_pattern(facts: AlertFacts, rng: np.random.Generator, key: int) -> Part:
    """Alerts of one typology on 3-6 different addresses (typologies never repeat per address)."""
    n = len(facts.typology)
    order = np.lexsort((rng.random(n), facts.typology))
    block_end = np.cumsum(np.bincount(facts.typology, minlength=len(TYPOLOGIES)))
    m = max(1, int(len(facts.group_size) * PATTERN_SHARE))
    start = rng.integers(0, n, m)
    end = np.minimum(start + rng.integers(3, 7, m), block_end[facts.typology[order[start]]])
    start, end = start[end - start >= 2], end[end - start >= 2]
    members = order[segment_index(start, end - start)]
    typ = facts.typology[order[start]]
    code = hex_strings(np.arange(len(start), dtype=np.uint64) ^ np.uint64(key & 0xFFFFFF), 6)
    lower = pick([t.lower() for t in TYPOLOGIES], typ)
    offsets = _offsets(end - start)
    return Part("same_pattern", join(lower, "_", code), join("pattern_", lower, "_", code),
                offsets, members, offsets, facts.address_row[members])


def related_network(facts: AlertFacts, pop: Population, src, dst, rng) -> Part:
    """All alerts of two alerted addresses joined by a money flow."""
    group_of = np.full(len(pop), -1, dtype=np.int64)
    group_of[pop.alerted] = np.arange(len(pop.alerted))
    both = np.flatnonzero((group_of[src] >= 0) & (group_of[dst] >= 0))
    m = min(len(both), max(1, int(len(pop.alerted) * NETWORK_SHARE)))
    pick_edges = np.sort(rng.choice(both, size=m, replace=False)) if m else both[:0]
    ga, gb = group_of[src[pick_edges]], group_of[dst[pick_edges]]
    starts = np.stack([facts.group_start[ga], facts.group_start[gb]], axis=1).ravel()
    sizes = np.stack([facts.group_size[ga], facts.group_size[gb]], axis=1).ravel()
    rows = np.stack([src[pick_edges], dst[pick_edges]], axis=1).ravel()
    return Part("related_network", hex_strings(np.arange(m, dtype=np.uint64), 6), _blank(m),
                _offsets(sizes.reshape(-1, 2).sum(axis=1)), segment_index(starts, sizes),
                np.arange(0, 2 * m + 1, 2), rows)


def orphans(n_alerts: int, total: int, pop: Population, rng) -> tuple[Part, int]:
    """time_based clusters whose alerts all expired upstream: indices past the real alerts."""
    m = max(1, int(total * ORPHAN_SHARE))
    sizes = rng.integers(2, 5, m)
    members = n_alerts + np.arange(int(sizes.sum()))
    rows = rng.integers(0, len(pop), m)
    part = Part("time_based", hex_strings(np.arange(m, dtype=np.uint64), 6), _blank(m),
                _offsets(sizes), members, np.arange(m + 1), rows)
    return part, int(sizes.sum())


def _with_dangling(part: Part, flags: np.ndarray, first_missing: int) -> Part:
    """Append one missing alert id to each flagged cluster (vectorised list insert)."""
    lengths = np.diff(part.member_offsets)
    new_offsets = _offsets(lengths + flags)
    out = np.empty(new_offsets[-1], dtype=np.int64)
    shift = np.repeat(new_offsets[:-1] - part.member_offsets[:-1], lengths)
    out[np.arange(len(part.members)) + shift] = part.members
    flagged = np.flatnonzero(flags)
    out[new_offsets[flagged] + lengths[flagged]] = first_missing + np.arange(len(flagged))
    part.member_offsets, part.members = new_offsets, out
    return part


def _pool(facts: AlertFacts, names: pa.Array, rng, day: Day):
    """Alert ids, confidence, volume and time of real alerts followed by missing ones."""
    n = len(names)
    conf = np.concatenate([facts.confidence, rng.uniform(0.3, 0.95, n).astype(np.float32)])
    volume = np.concatenate([facts.volume, np.round(rng.exponential(2_000.0, n), 2)])
    offset = np.floor(rng.random(n) * day.window_days * 86_400_000)
    stamp = np.concatenate([facts.timestamp, (day.end_ms - 1 - offset).astype(np.uint64)])
    missing = uuid5_strings(join(names, "-expired"), ALERT_NAMESPACE) if n else names
    return pa.concat_arrays([facts.alert_id, missing]), conf, volume, stamp


def build(facts: AlertFacts, pop: Population, src, dst, rng: np.random.Generator,
          day: Day) -> pa.Table:
    """The clusters table."""
    parts = [same_entity(facts, pop), same_pattern(facts, rng, day.key),
             related_network(facts, pop, src, dst, rng)]
    n_alerts, total = len(facts.confidence), sum(len(p) for p in parts)
    orphan, n_orphan_ids = orphans(n_alerts, total, pop, rng)
    first_missing = n_alerts + n_orphan_ids
    for i, part in enumerate(parts):
        flags = (rng.random(len(part)) < DANGLING_SHARE).astype(np.int64)
        parts[i] = _with_dangling(part, flags, first_missing)
        first_missing += int(flags.sum())
    parts.append(orphan)
    return _assemble(parts, facts, pop, rng, day, first_missing - n_alerts)


def _assemble(parts, facts, pop, rng, day: Day, n_missing: int) -> pa.Table:
    kinds = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])
    kind_names = [p.kind for p in parts]
    names = pa.concat_arrays([p.names for p in parts])
    cluster_ids = join("cluster_", pick(kind_names, kinds), "_", names, "_", day.processing_date)
    missing_names = _missing_names(parts, cluster_ids, len(facts.confidence), n_missing)
    pool_ids, conf, volume, stamp = _pool(facts, missing_names, rng, day)
    member_offsets, members = _concat_lists([(p.member_offsets, p.members) for p in parts])
    addr_offsets, addr_rows = _concat_lists([(p.address_offsets, p.address_rows) for p in parts])
    stats = _stats(member_offsets, members, conf, volume, stamp)
    n = len(kinds)
    cols = {
        "cluster_id": cluster_ids, "cluster_type": pick(kind_names, kinds),
        "primary_address": pop.address.take(pa.array(addr_rows[addr_offsets[:-1]])),
        "pattern_id": pa.concat_arrays([p.pattern_id for p in parts]),
        "primary_alert_id": pool_ids.take(pa.array(stats["primary"])),
        "related_alert_ids": ragged_lists(member_offsets, pool_ids.take(pa.array(members))),
        "addresses_involved": ragged_lists(addr_offsets, pop.address.take(pa.array(addr_rows))),
        "total_alerts": pa.array(np.diff(member_offsets).astype(np.uint32)),
        "total_volume_usd": decimal_usd(stats["volume"]),
        "severity_max": pick(SEVERITIES, severity_index(stats["conf_max"])),
        "confidence_avg": pa.array(stats["conf_avg"].astype(np.float32)),
        "earliest_alert_timestamp": pa.array(stats["first"]),
        "latest_alert_timestamp": pa.array(stats["last"]),
        "window_days": window_column(day.window_days, n),
        "processing_date": date_column(day.date_days, n),
    }
    return pa.Table.from_arrays([cols[f.name] for f in CLUSTERS_SCHEMA], schema=CLUSTERS_SCHEMA)


def _missing_names(parts, cluster_ids: pa.Array, n_alerts: int, n_missing: int) -> pa.Array:
    """For each missing pool slot, the id of the cluster that references it (names it uniquely)."""
    owner = np.empty(n_missing, dtype=np.int64)
    base = 0
    for part in parts:
        seg = np.repeat(np.arange(len(part)), np.diff(part.member_offsets)) + base
        missing = part.members >= n_alerts
        owner[part.members[missing] - n_alerts] = seg[missing]
        base += len(part)
    serial = hex_strings(np.arange(n_missing, dtype=np.uint64), 8)
    return join(cluster_ids.take(pa.array(owner)), "-", serial)


def _concat_lists(pairs):
    offsets, values, base = [np.zeros(1, dtype=np.int64)], [], 0
    for off, vals in pairs:
        offsets.append(np.asarray(off[1:], dtype=np.int64) + base)
        values.append(np.asarray(vals, dtype=np.int64))
        base += int(off[-1])
    return np.concatenate(offsets), np.concatenate(values)


def _stats(offsets: np.ndarray, members: np.ndarray, conf, volume, stamp) -> dict:
    """Per-cluster aggregates over member alerts (all clusters are non-empty)."""
    starts = offsets[:-1]
    seg = np.repeat(np.arange(len(starts)), np.diff(offsets))
    mconf = conf[members]
    best = np.lexsort((-mconf, seg))[starts]  # first of each segment after sorting by -conf
    return {"primary": members[best],
            "conf_max": np.maximum.reduceat(mconf, starts),
            "conf_avg": np.add.reduceat(mconf.astype(np.float64), starts) / np.diff(offsets),
            "volume": np.add.reduceat(volume[members], starts),
            "first": np.minimum.reduceat(stamp[members], starts),
            "last": np.maximum.reduceat(stamp[members], starts)}
