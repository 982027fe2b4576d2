"""The sample generator's tables: contract schemas, keys, and realistic, imperfect structure."""

from __future__ import annotations

import uuid

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from shared import contract
from shared.sample import generate_batch
from shared.samplegen.alerts import ALERT_NAMESPACE
from shared.storage import InvalidDate
from tests.sample_fixtures import DATE, SMALL, small_batch

TABLE_SCHEMAS = {"alerts": contract.ALERTS_SCHEMA, "features": contract.FEATURES_SCHEMA,
                 "clusters": contract.CLUSTERS_SCHEMA, "money_flows": contract.MONEY_FLOWS_SCHEMA,
                 "labels": contract.LABELS_SCHEMA}


@pytest.mark.parametrize("name", sorted(TABLE_SCHEMAS))
def test_every_table_has_exactly_the_contract_schema(name):
    table = getattr(small_batch(), name)
    assert table.schema.equals(TABLE_SCHEMAS[name]), table.schema


def test_legacy_columns_only_when_asked():
    plain, legacy = small_batch().features, small_batch(legacy=True).features
    assert not set(contract.LEGACY_FEATURE_COLUMNS) & set(plain.column_names)
    assert legacy.column_names[:len(contract.FEATURES_SCHEMA)] == contract.FEATURES_SCHEMA.names
    extra = legacy.column_names[len(contract.FEATURES_SCHEMA):]
    assert extra == list(contract.LEGACY_FEATURE_COLUMNS)
    assert legacy.num_rows == plain.num_rows


def test_alert_ids_are_uuid5_of_address_typology_date():
    alerts = small_batch().alerts.to_pydict()
    expected = [str(uuid.uuid5(ALERT_NAMESPACE, f"{a}-{t}-{DATE}"))
                for a, t in zip(alerts["address"], alerts["typology_type"])]
    assert alerts["alert_id"] == expected
    assert len(set(expected)) == SMALL


def test_alert_values_follow_the_contract():
    alerts = small_batch().alerts
    assert set(pc.unique(alerts.column("typology_type")).to_pylist()) <= set(contract.TYPOLOGIES)
    conf = alerts.column("alert_confidence_score").to_numpy()
    expected = np.select([conf >= 0.9, conf >= 0.75, conf >= 0.6],
                         ["critical", "high", "medium"], "low")
    assert alerts.column("severity").to_pylist() == expected.tolist()
    assert ((conf > 0) & (conf < 1)).all()
    assert pc.min(pc.list_value_length(alerts.column("risk_indicators"))).as_py() >= 1
    dates = set(pc.unique(alerts.column("processing_date")).to_pylist())
    assert dates == {np.datetime64(DATE).item()}


def test_several_alerts_per_address_and_every_address_has_features():
    batch = small_batch()
    per_address = pc.value_counts(batch.alerts.column("address")).field("counts").to_numpy()
    assert per_address.max() >= 3 and (per_address == 1).any()
    features = batch.features.column("address")
    assert pc.count_distinct(features).as_py() == batch.features.num_rows
    assert pc.all(pc.is_in(batch.alerts.column("address"), value_set=features)).as_py()
    assert batch.features.num_rows > len(per_address)  # non-alerted counterparties too


def test_same_entity_cluster_for_each_address_with_two_or_more_alerts():
    batch = small_batch()
    counts = pc.value_counts(batch.alerts.column("address"))
    multi = {v["values"] for v in counts.to_pylist() if v["counts"] >= 2}
    clusters = batch.clusters.to_pylist()
    same_entity = {c["primary_address"] for c in clusters if c["cluster_type"] == "same_entity"}
    assert same_entity == multi
    kinds = {c["cluster_type"] for c in clusters}
    assert kinds >= {"same_entity", "same_pattern", "related_network"}
    assert len({c["cluster_id"] for c in clusters}) == len(clusters)
    assert all(c["total_alerts"] == len(c["related_alert_ids"]) >= 2 for c in clusters)


def test_some_clusters_reference_alerts_missing_from_the_batch():
    batch = small_batch()
    known = set(batch.alerts.column("alert_id").to_pylist())
    clusters = batch.clusters.to_pylist()
    partly = [c for c in clusters if not set(c["related_alert_ids"]) <= known]
    wholly = [c for c in clusters if not set(c["related_alert_ids"]) & known]
    assert 0 < len(partly) < 0.15 * len(clusters)
    assert wholly and all(c["primary_alert_id"] not in known for c in wholly)
    for c in clusters:
        assert c["primary_alert_id"] in c["related_alert_ids"]
        assert c["earliest_alert_timestamp"] <= c["latest_alert_timestamp"]


def test_money_flows_are_unique_directed_pairs_of_known_addresses():
    batch = small_batch()
    flows = batch.money_flows
    pairs = list(zip(flows.column("from_address").to_pylist(),
                     flows.column("to_address").to_pylist()))
    assert len(set(pairs)) == len(pairs) and all(a != b for a, b in pairs)
    addresses = batch.features.column("address")
    for col in ("from_address", "to_address"):
        assert pc.all(pc.is_in(flows.column(col), value_set=addresses)).as_py()
    two_way = {p for p in pairs if (p[1], p[0]) in set(pairs)}
    flags = flows.column("is_bidirectional").to_pylist()
    assert {p for p, f in zip(pairs, flags) if f} == two_way and two_way
    tx = flows.column("tx_count").to_numpy()
    assert (np.array(flows.column("hourly_pattern").to_pylist()).sum(axis=1) == tx).all()
    assert set(flows.column("processing_date").to_pylist()) == {DATE}


def _labelled(batch):
    labels = batch.labels.to_pandas()
    positive = labels.risk_level.isin(["high", "critical"]).groupby(labels.address).max()
    alerts = batch.alerts.to_pandas()
    return alerts.address.map(positive)


def test_labels_cover_part_of_alerted_addresses_with_both_classes():
    batch = small_batch(n_alerts=3000)
    labels = batch.labels.to_pandas()
    assert set(labels.risk_level) == set(contract.RISK_LEVELS)
    assert set(labels.trust_level) <= set(contract.TRUST_LEVELS)
    assert labels.address.duplicated().any()  # several rows per address happen
    alerted = set(batch.alerts.column("address").to_pylist())
    coverage = len(alerted & set(labels.address)) / len(alerted)
    assert 0.3 < coverage < 0.7
    label = _labelled(batch).dropna()
    assert 0.15 < label.mean() < 0.7


def test_label_rows_of_an_address_are_the_same_on_every_date():
    a, b = small_batch().labels.to_pandas(), small_batch(date="2025-10-27").labels.to_pandas()
    common = sorted(set(a.address) & set(b.address))
    assert len(common) > 20
    key = ["address", "source"]
    left = a[a.address.isin(common)].sort_values(key).reset_index(drop=True)
    right = b[b.address.isin(common)].sort_values(key).reset_index(drop=True)
    assert left.equals(right)


def test_seed_and_date_both_change_the_data_but_not_its_shape():
    base = small_batch()
    for other in (small_batch(seed=1), small_batch(date="2025-10-27")):
        assert not base.alerts.equals(other.alerts)
        assert not base.features.equals(other.features)
        assert other.alerts.num_rows == SMALL
        assert other.features.num_rows == base.features.num_rows
    assert base.alerts.equals(generate_batch("bitcoin", DATE, 7, n_alerts=SMALL, seed=0).alerts)


def test_network_names_shape_the_addresses():
    eth = small_batch(network="ethereum", n_alerts=50)
    addresses = eth.features.column("address").to_pylist()
    assert all(a.startswith("0x") and len(a) == 42 for a in addresses)
    assert set(eth.labels.column("network").to_pylist()) == {"ethereum"}


@pytest.mark.parametrize("kwargs, match", [
    ({"processing_date": "2025-02-30"}, "2025-02-30"),
    ({"processing_date": "26/10/2025"}, "26/10/2025"),
])
def test_bad_dates_are_refused_naming_the_date(kwargs, match):
    with pytest.raises(InvalidDate, match=match):
        generate_batch("bitcoin", n_alerts=10, **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_alerts": 0}, "n_alerts"), ({"n_alerts": 10**9}, "n_alerts"),
    ({"window_days": 0}, "window_days"), ({"window_days": 70_000}, "window_days"),
    ({"seed": -1}, "seed"), ({"network": "bit coin"}, "network"), ({"network": ""}, "network"),
])
def test_bad_arguments_are_refused_naming_the_argument(kwargs, match):
    args = {"network": "bitcoin", "processing_date": DATE, "n_alerts": 10} | kwargs
    with pytest.raises(ValueError, match=match):
        generate_batch(**args)


def test_tiny_and_large_windows_work():
    one = generate_batch("bitcoin", DATE, 1, n_alerts=1)
    assert one.alerts.num_rows == 1 and one.features.num_rows >= 1
    wide = generate_batch("bitcoin", DATE, 195, n_alerts=200)
    days = wide.features.column("activity_days").to_numpy()
    assert days.max() <= 195 and days.min() >= 1
    assert pa.compute.max(wide.features.column("activity_span_days")).as_py() <= 195
