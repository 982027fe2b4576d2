"""Feature shapes and meaning: one row per alert / per cluster, fixed codes, optional columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from services.processor import features as F
from shared import contract
from tests.processor_fixtures import (alerts_table, clusters_table, features_table,
                                      money_flows_table)


def _clean(table, spec):
    return contract.clean_arrow(spec.file, table, spec)


@pytest.fixture
def batch():
    return (_clean(alerts_table(), contract.ALERTS), _clean(features_table(), contract.FEATURES),
            _clean(clusters_table(), contract.CLUSTERS),
            _clean(money_flows_table(), contract.MONEY_FLOWS))


def test_one_float32_row_per_alert_in_alert_order(batch):
    alerts, features, clusters, flows = batch
    frame = F.alert_features(alerts, features, clusters, flows)
    assert len(frame) == alerts.num_rows == 4
    assert set(frame.dtypes) == {np.dtype("float32")}
    np.testing.assert_allclose(frame["alert_confidence"], [0.8, 0.5, 0.95, 0.61], rtol=1e-6)
    np.testing.assert_allclose(frame["alert_volume_usd"], [100, 50, 1000, 5])


def test_one_row_per_cluster_also_when_members_are_missing(batch):
    alerts, features, clusters, flows = batch
    frame = F.cluster_features(clusters, alerts, features, flows)
    assert len(frame) == clusters.num_rows == 3
    found = frame["cl_members_found"].tolist()
    assert found == [3, 0, 0]  # k2 names only alerts absent from the batch, k3 none at all
    assert np.isnan(frame.loc[1, "cl_member_alert_confidence_max"])
    assert frame.loc[0, "cl_member_alert_confidence_max"] == pytest.approx(0.95)
    assert frame.loc[0, "cl_addresses_found"] == 2 and frame.loc[1, "cl_addresses_found"] == 0


def test_categories_get_fixed_codes_from_the_contract_lists(batch):
    alerts, features, clusters, flows = batch
    frame = F.alert_features(alerts, features, clusters, flows)
    typology = frame["alert_typology"].to_numpy()
    assert typology[:3].tolist() == [contract.TYPOLOGIES.index("PEEL_CHAIN"),
                                     contract.TYPOLOGIES.index("STRUCTURING"),
                                     contract.TYPOLOGIES.index("MIXING_BEHAVIOR")]
    assert np.isnan(typology[3])  # not a known typology
    assert frame["alert_severity"].to_numpy()[:3].tolist() == [2, 0, 3]
    address_type = frame["alert_address_type"].to_numpy()
    assert address_type[0] == F.ADDRESS_TYPES.index("mixer")
    assert address_type[2] == len(F.ADDRESS_TYPES)  # unknown value: the "other" code
    assert np.isnan(address_type[3])  # empty


def test_codes_do_not_depend_on_the_other_rows(batch):
    alerts, features, clusters, flows = batch
    alone = F.alert_features(alerts.slice(2, 1), features, clusters, flows)
    together = F.alert_features(alerts, features, clusters, flows)
    assert alone["alert_typology"][0] == together["alert_typology"][2]
    assert alone["alert_address_type"][0] == together["alert_address_type"][2]


def test_address_features_joined_and_nan_without_a_features_row(batch):
    alerts, features, clusters, flows = batch
    frame = F.alert_features(alerts, features, clusters, flows)
    assert frame["addr_degree_in"].tolist()[:3] == [1, 1, 2]  # a, a, b
    assert np.isnan(frame["addr_degree_in"][3])  # c has no features row
    assert frame["addr_days_since_first"].tolist()[:3] == [1, 1, 2]


def test_peer_counts_and_cluster_membership(batch):
    alerts, features, clusters, flows = batch
    frame = F.alert_features(alerts, features, clusters, flows)
    assert frame["peer_alerts"].tolist() == [2, 2, 1, 1]
    assert frame["peer_typologies"].tolist() == [2, 2, 1, 0]
    assert frame["clusters_count"].tolist() == [1, 1, 1, 0]


def test_money_flow_aggregates_per_address(batch):
    alerts, features, clusters, flows = batch
    frame = F.alert_features(alerts, features, clusters, flows)
    row = frame.iloc[0]  # address a: a->b (bidirectional), b->a, a->z
    assert (row["flow_out_edges"], row["flow_in_edges"]) == (2, 1)
    assert (row["flow_out_usd"], row["flow_in_usd"]) == (16, 4)
    assert row["flow_counterparties"] == 2  # b counted once
    assert frame.iloc[3]["flow_out_edges"] == 0  # c has no flows


def test_without_money_flows_there_are_no_flow_columns(batch):
    alerts, features, clusters, _ = batch
    frame = F.alert_features(alerts, features, clusters, None)
    assert not [c for c in frame.columns if c.startswith("flow_")]
    assert len(frame) == 4


def test_legacy_columns_used_when_present_never_required(batch):
    alerts, features, clusters, flows = batch
    with_legacy = features.append_column("is_mixer_like", pa.array([True, False, True]))
    assert "addr_is_mixer_like" in F.alert_features(alerts, with_legacy, clusters, flows)
    lean = features.select(["address", "degree_in"])
    frame = F.alert_features(alerts, lean, clusters, flows)
    assert "addr_is_mixer_like" not in frame and "addr_pagerank" not in frame
    assert frame["addr_degree_in"].tolist()[:3] == [1, 1, 2]


def test_empty_features_and_clusters_still_give_the_right_shapes(batch):
    alerts, features, clusters, _ = batch
    frame = F.alert_features(alerts, features.slice(0, 0), clusters.slice(0, 0))
    assert len(frame) == 4 and np.isnan(frame["addr_degree_in"]).all()
    assert len(F.cluster_features(clusters.slice(0, 0), alerts, features)) == 0


def test_features_are_deterministic(batch):
    first = F.alert_features(*batch)
    second = F.alert_features(*batch)
    assert first.equals(second)
