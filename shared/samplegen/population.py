"""Who is in a sample day: a stable address universe per (network, seed) and the day's draw.

An address's identity, its hidden behaviour (archetype) and its labels depend only
on (network, seed, id), so the same address keeps its class across dates and a
network's label file stays consistent; which addresses are active, and which
raise alerts, depends on the date.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from shared.samplegen.columns import (
    bytes_to_strings, gumbel_top, stable_bits, stable_uniform)

MAX_ADDRESSES = 1_000_000  # features.parquet holds at most 1M rows (SOT_CONTRACT.md §2)
MAX_ALERTS_PER_ADDRESS = 8
ADDRESSES_PER_ALERTED = 2.5
ALERTS_PER_ALERTED = 1.6
UNIVERSE_FACTOR = 1.4

ARCHETYPES = ("retail", "exchange", "merchant", "whale",
              "peel_chain", "structuring", "fan_in", "fan_out", "cycle", "mixer")
N_BENIGN = 4  # archetypes below this index are benign
SHARE = np.array([0.73, 0.045, 0.075, 0.05, 0.022, 0.022, 0.017, 0.017, 0.011, 0.011])
ALERT_WEIGHT = np.array([0.15, 1.0, 0.8, 0.7, 1.5, 1.5, 1.4, 1.4, 1.4, 1.5])
EXTRA_ALERT_WEIGHT = np.array([0.5, 1.0, 0.9, 0.7, 1.3, 1.4, 1.2, 1.2, 1.3, 1.3])

STREAM_ARCHETYPE, STREAM_INTENSITY, STREAM_ADDRESS, STREAM_ID = 1, 2, 3, 4

# (prefix, alphabet) of address strings; alphabets are powers of two in size.
_BECH32 = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_STYLES = {"bitcoin": (b"bc1q", _BECH32, 38), "ethereum": (b"0x", b"0123456789abcdef", 40)}
_ID_BITS = 30


@dataclass(frozen=True)
class Day:
    """The identity of a sample batch, and the key of its network's address universe."""

    network: str
    processing_date: str
    date_days: int        # days since 1970-01-01
    window_days: int
    key: int              # stable per (network, seed): ids, archetypes, labels

    @property
    def end_ms(self) -> int:
        """The window's exclusive end (the processing date's midnight, UTC) in ms."""
        return self.date_days * 86_400_000


@dataclass
class Population:
    """The addresses of one day (features rows), in id order, and their hidden traits."""

    ids: np.ndarray          # uint64 universe ids
    address: pa.Array        # string
    archetype: np.ndarray    # int8 index into ARCHETYPES
    intensity: np.ndarray    # float64 0..1, how strongly the behaviour shows
    alerted: np.ndarray      # int64 row indices of alerted addresses, ascending
    alert_counts: np.ndarray  # int64 alerts per alerted address (1..8)

    @property
    def illicit(self) -> np.ndarray:
        return self.archetype >= N_BENIGN

    def __len__(self) -> int:
        return len(self.ids)


def sizes(n_alerts: int) -> tuple[int, int, int]:
    """(alerted addresses, day population, universe) for a number of alerts."""
    if n_alerts < 1 or n_alerts > MAX_ALERTS_PER_ADDRESS * MAX_ADDRESSES:
        most = MAX_ALERTS_PER_ADDRESS * MAX_ADDRESSES
        raise ValueError(f"n_alerts={n_alerts} must be in 1..{most}")
    alerted = max(math.ceil(n_alerts / ALERTS_PER_ALERTED),
                  math.ceil(n_alerts / MAX_ALERTS_PER_ADDRESS))
    alerted = min(alerted, MAX_ADDRESSES, n_alerts)
    day = min(max(math.ceil(alerted * ADDRESSES_PER_ALERTED), 50), MAX_ADDRESSES)
    return alerted, day, math.ceil(day * UNIVERSE_FACTOR)


def archetypes(ids: np.ndarray, key: int) -> np.ndarray:
    """The stable hidden archetype of each id."""
    u = stable_uniform(ids, key, STREAM_ARCHETYPE)
    return np.searchsorted(np.cumsum(SHARE) / SHARE.sum(), u, side="right").astype(np.int8)


def intensities(ids: np.ndarray, key: int, archetype: np.ndarray) -> np.ndarray:
    """How strongly each address shows its behaviour; some launderers barely show."""
    u = stable_uniform(ids, key, STREAM_INTENSITY)
    return np.where(archetype >= N_BENIGN, 0.1 + 0.9 * u ** 0.8, 0.5 + 0.7 * u)


def address_strings(ids: np.ndarray, key: int, network: str) -> pa.Array:
    """Realistic-looking, unique address strings (the tail encodes a scrambled id)."""
    default = (network[:4].lower().encode() + b"1", _BECH32, 38)
    prefix, alphabet, body = _STYLES.get(network, default)
    bits = int(math.log2(len(alphabet)))
    table = np.frombuffer(alphabet, dtype=np.uint8)
    id_chars = math.ceil(_ID_BITS / bits)
    out = np.empty((len(ids), len(prefix) + body), dtype=np.uint8)
    out[:, :len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    per_word, digit_mask = 64 // bits, np.uint64(len(alphabet) - 1)
    for j in range(body - id_chars):
        if j % per_word == 0:
            word = stable_bits(ids, key, STREAM_ADDRESS + 100 * (j // per_word + 1))
        out[:, len(prefix) + j] = table[(word >> np.uint64(bits * (j % per_word))) & digit_mask]
    scrambled = _scramble(ids, key)
    for j in range(id_chars):
        digit = (scrambled >> np.uint64(bits * j)) & digit_mask
        out[:, len(prefix) + body - 1 - j] = table[digit]
    return bytes_to_strings(out)


def _scramble(ids: np.ndarray, key: int) -> np.ndarray:
    """A bijection of [0, 2**30) so unique ids give unique, unordered-looking tails."""
    mask = np.uint64(2 ** _ID_BITS - 1)
    x = (np.asarray(ids, dtype=np.uint64) ^ np.uint64(key & int(mask))) & mask
    for mult in (0x2C1B3C6D, 0x297A2D39):
        x = (x * np.uint64(mult)) & mask  # odd multiplier: invertible mod 2**30
        x ^= x >> np.uint64(15)
    return x


def draw(n_alerts: int, day: Day, rng: np.random.Generator) -> Population:
    """The day's population, who raises alerts, and how many alerts each."""
    key = day.key
    n_alerted, n_day, universe = sizes(n_alerts)
    ids = np.sort(rng.choice(universe, size=n_day, replace=False)).astype(np.uint64)
    arch = archetypes(ids, key)
    intensity = intensities(ids, key, arch)
    weight = np.log(ALERT_WEIGHT[arch] * (0.4 + intensity))
    alerted = np.sort(gumbel_top(weight, n_alerted, rng))
    counts = _alert_counts(arch[alerted], n_alerts, rng)
    addresses = address_strings(ids, key, day.network)
    return Population(ids, addresses, arch, intensity, alerted, counts)


def _alert_counts(arch: np.ndarray, n_alerts: int, rng: np.random.Generator) -> np.ndarray:
    """One alert per alerted address, the rest spread (max 8 each) by weighted slots."""
    extra = n_alerts - len(arch)
    slots = MAX_ALERTS_PER_ADDRESS - 1
    decay = np.log(0.55) * np.arange(slots)
    log_w = np.log(EXTRA_ALERT_WEIGHT[arch])[:, None] + decay[None, :]
    chosen = gumbel_top(log_w.ravel(), extra, rng) if extra > 0 else np.empty(0, np.int64)
    return 1 + np.bincount(chosen // slots, minlength=len(arch)).astype(np.int64)


