"""The SOT contract validator on good and bad date folders.

Every error must name the file and the problem.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared import contract
from shared.contract import ContractError, load_batch
from shared.sample import write_input
from tests.sample_fixtures import DATE, small_batch

N = 200


@pytest.fixture(scope="module")
def good_folder(tmp_path_factory) -> Path:
    return write_input(small_batch(n_alerts=N), tmp_path_factory.mktemp("good")).resolve()


@pytest.fixture
def folder(good_folder, tmp_path) -> Path:
    """A private copy of a valid date folder to break."""
    return Path(shutil.copytree(good_folder, tmp_path / DATE))


def _rewrite(path: Path, change) -> None:
    pq.write_table(change(pq.read_table(path)), path)


def _set(table: pa.Table, name: str, values, type=None) -> pa.Table:
    index = table.schema.get_field_index(name)
    return table.set_column(index, name, pa.array(values, type=type))


def _raises(folder: Path, file: str, *words: str) -> ContractError:
    with pytest.raises(ContractError) as info:
        load_batch(folder)
    message = str(info.value)
    assert file in message and info.value.file.endswith(file), message
    for word in words:
        assert word in message, message
    return info.value


def test_a_good_folder_loads(folder):
    batch = load_batch(folder)
    assert len(batch.alerts) == N
    assert len(batch.features) == small_batch(n_alerts=N).features.num_rows


def test_missing_date_folder(tmp_path):
    with pytest.raises(ContractError, match="does not exist"):
        load_batch(tmp_path / "2025-01-01")


@pytest.mark.parametrize("file", contract.REQUIRED_BATCH_FILES)
def test_missing_required_file(folder, file):
    (folder / file).unlink()
    _raises(folder, file, "missing")


@pytest.mark.parametrize("file", [contract.MONEY_FLOWS_FILE, contract.LABELS_FILE])
def test_missing_optional_file_is_absent_not_fatal(folder, file, caplog):
    (folder / file).unlink()
    batch = load_batch(folder)
    name = "money_flows" if file == contract.MONEY_FLOWS_FILE else "labels"
    assert getattr(batch, name) is None
    assert file in caplog.text


@pytest.mark.parametrize("file", contract.BATCH_FILES + (contract.LABELS_FILE,))
@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_parquet(folder, file, damage):
    path = folder / file
    data = path.read_bytes()
    path.write_bytes({"garbage": b"PAR1 this is not parquet at all",
                      "truncated": data[: len(data) // 2], "empty": b""}[damage])
    _raises(folder, file, "not a readable parquet file")


def test_a_folder_where_a_file_should_be(folder):
    path = folder / contract.ALERTS_FILE
    path.unlink()
    path.mkdir()
    _raises(folder, contract.ALERTS_FILE, "not a file")


@pytest.mark.parametrize("file, column", [
    (contract.ALERTS_FILE, "alert_id"), (contract.ALERTS_FILE, "address"),
    (contract.ALERTS_FILE, "processing_date"), (contract.ALERTS_FILE, "window_days"),
    (contract.FEATURES_FILE, "address"), (contract.CLUSTERS_FILE, "cluster_id"),
    (contract.MONEY_FLOWS_FILE, "to_address"), (contract.LABELS_FILE, "risk_level"),
])
def test_missing_required_column(folder, file, column):
    _rewrite(folder / file, lambda t: t.drop_columns([column]))
    _raises(folder, file, "missing required column", column)


def test_missing_optional_column_is_fine(folder):
    _rewrite(folder / contract.ALERTS_FILE,
             lambda t: t.drop_columns(["evidence_json", "severity"]))
    _rewrite(folder / contract.FEATURES_FILE,
             lambda t: t.drop_columns(["pagerank", "hourly_activity"]))
    batch = load_batch(folder)
    assert "severity" not in batch.alerts and "pagerank" not in batch.features


@pytest.mark.parametrize("bad", [None, ""])
def test_null_or_empty_alert_id(folder, bad):
    def change(t):
        ids = t.column("alert_id").to_pylist()
        ids[3] = bad
        return _set(t, "alert_id", ids, pa.string())
    _rewrite(folder / contract.ALERTS_FILE, change)
    _raises(folder, contract.ALERTS_FILE, "1 row(s) with null or empty 'alert_id'")


def test_duplicate_alert_id(folder):
    def change(t):
        ids = t.column("alert_id").to_pylist()
        ids[5] = ids[4]
        return _set(t, "alert_id", ids, pa.string())
    _rewrite(folder / contract.ALERTS_FILE, change)
    dupe = pq.read_table(folder / contract.ALERTS_FILE).column("alert_id")[4].as_py()
    _raises(folder, contract.ALERTS_FILE, "1 duplicate 'alert_id'", dupe)


def test_duplicate_cluster_id(folder):
    def change(t):
        ids = t.column("cluster_id").to_pylist()
        ids[-1] = ids[0]
        return _set(t, "cluster_id", ids, pa.string())
    _rewrite(folder / contract.CLUSTERS_FILE, change)
    _raises(folder, contract.CLUSTERS_FILE, "duplicate 'cluster_id'")


def test_null_cluster_id(folder):
    _rewrite(folder / contract.CLUSTERS_FILE,
             lambda t: _set(t, "cluster_id", [None] * t.num_rows, pa.string()))
    _raises(folder, contract.CLUSTERS_FILE, "null or empty 'cluster_id'")


def test_duplicate_feature_address(folder):
    def change(t):
        addresses = t.column("address").to_pylist()
        addresses[1] = addresses[0]
        return _set(t, "address", addresses, pa.string())
    _rewrite(folder / contract.FEATURES_FILE, change)
    _raises(folder, contract.FEATURES_FILE, "duplicate 'address'")


CAST = "cannot be cast"


@pytest.mark.parametrize("file, column, value, type_, problem", [
    (contract.ALERTS_FILE, "alert_confidence_score", "high", pa.string(), CAST),
    (contract.ALERTS_FILE, "risk_indicators", "long_chain", pa.string(), "expected a list"),
    (contract.ALERTS_FILE, "processing_date", "yesterday", pa.string(), "not a date"),
    (contract.ALERTS_FILE, "window_days", -7, pa.int64(), CAST),
    (contract.FEATURES_FILE, "total_volume_usd", "lots", pa.string(), CAST),
    (contract.CLUSTERS_FILE, "total_alerts", [1.0], pa.list_(pa.float64()), CAST),
    (contract.MONEY_FLOWS_FILE, "processing_date", "26.10.2025", pa.string(), "not a date"),
])
def test_a_type_that_cannot_be_cast(folder, file, column, value, type_, problem):
    _rewrite(folder / file, lambda t: _set(t, column, [value] * t.num_rows, type_))
    _raises(folder, file, column, problem)


def test_castable_types_are_accepted(folder):
    def change(t):
        t = _set(t, "window_days", np.full(t.num_rows, 7, dtype=np.int64))
        confidence = t.column("alert_confidence_score").cast(pa.float64())
        t = _set(t, "alert_confidence_score", confidence)
        return _set(t, "volume_usd", t.column("volume_usd").cast(pa.string()))
    _rewrite(folder / contract.ALERTS_FILE, change)
    alerts = load_batch(folder).alerts
    assert alerts.window_days.dtype == np.uint16
    assert alerts.alert_confidence_score.dtype == np.float32
    assert alerts.volume_usd.dtype == np.float64


def test_dictionary_encoded_columns_are_decoded(folder):
    def change(t):
        for name in ("typology_type", "processing_date"):
            t = _set(t, name, t.column(name).cast(pa.string()).dictionary_encode())
        return t
    _rewrite(folder / contract.ALERTS_FILE, change)
    alerts = load_batch(folder).alerts
    assert str(alerts.processing_date.iloc[0]) == DATE
    assert set(alerts.typology_type) <= set(contract.TYPOLOGIES)


def test_empty_alerts(folder):
    _rewrite(folder / contract.ALERTS_FILE, lambda t: t.slice(0, 0))
    _raises(folder, contract.ALERTS_FILE, "has no rows")


def test_empty_clusters_and_flows_are_accepted(folder):
    for file in (contract.CLUSTERS_FILE, contract.MONEY_FLOWS_FILE):
        _rewrite(folder / file, lambda t: t.slice(0, 0))
    batch = load_batch(folder)
    assert len(batch.clusters) == 0 and len(batch.money_flows) == 0


def test_legacy_columns_present_or_absent_are_both_accepted(tmp_path):
    plain = load_batch(write_input(small_batch(n_alerts=N), tmp_path / "plain")).features
    legacy_folder = write_input(small_batch(n_alerts=N, legacy=True), tmp_path / "legacy")
    legacy = load_batch(legacy_folder).features
    assert not set(contract.LEGACY_FEATURE_COLUMNS) & set(plain.columns)
    assert set(contract.LEGACY_FEATURE_COLUMNS) <= set(legacy.columns)
    assert legacy.is_whale.dtype == bool and legacy.outlier_score.dtype == np.float32
    assert list(legacy.columns[:len(plain.columns)]) == list(plain.columns)


def test_decimals_become_float64_with_their_values(folder):
    raw = pq.read_table(folder / contract.FEATURES_FILE)
    features = load_batch(folder).features
    decimals = [f.name for f in contract.FEATURES_SCHEMA if pa.types.is_decimal(f.type)]
    assert len(decimals) == 14
    for name in decimals:
        assert features[name].dtype == np.float64, name
        expected = np.array([float(v) for v in raw.column(name).to_pylist()])
        # Arrow's decimal->double cast may be 1 ulp off the correctly rounded value.
        np.testing.assert_allclose(features[name].to_numpy(), expected, rtol=1e-15, atol=0)
    assert isinstance(raw.column("total_in_usd")[0].as_py(), Decimal)


def test_lists_arrive_as_arrays_and_money_flow_dates_as_strings_are_accepted(folder):
    raw = pq.read_table(folder / contract.MONEY_FLOWS_FILE)
    assert raw.schema.field("processing_date").type == pa.string()
    batch = load_batch(folder)
    assert str(batch.money_flows.processing_date.iloc[0]) == DATE
    lists = ((batch.alerts, "risk_indicators"), (batch.clusters, "addresses_involved"),
             (batch.money_flows, "weekly_pattern"))
    for frame, column in lists:
        assert isinstance(frame[column].iloc[0], np.ndarray), column


def test_errors_name_the_file_in_a_readable_message(folder):
    (folder / contract.CLUSTERS_FILE).unlink()
    error = _raises(folder, contract.CLUSTERS_FILE, "missing")
    assert str(error) == f"{folder / contract.CLUSTERS_FILE}: {error.problem}"


def _decimal_column(values, chunks=1):
    array = pa.array([None if v is None else Decimal(v) for v in values], contract.DECIMAL)
    size = -(-len(array) // chunks)
    return pa.chunked_array([array.slice(i, size) for i in range(0, len(array), size)],
                            contract.DECIMAL)


@pytest.mark.parametrize("chunks", [1, 3])
def test_fast_decimal_conversion_is_within_two_ulp_of_exact(chunks):
    values = ["0", "-0.000000000000000001", "0.000000000000000001", None, "123456789.123456789",
              "-18.446744073709551616", "-18.446744073709551615", "18.446744073709551617",
              "-98765432109876543210.5", "99999999999999999999.999999999999999999", None,
              "-0.5", "1e6", "-42"]
    column = _decimal_column(values, chunks)
    got = contract.decimal_to_float64(column)
    assert got.type == pa.float64() and got.null_count == 2
    got = got.to_numpy(zero_copy_only=False)
    exact = np.array([np.nan if v is None else float(Decimal(v)) for v in values])
    assert np.array_equal(np.isnan(got), np.isnan(exact))
    known = ~np.isnan(exact)
    assert np.array_equal(np.sign(got[known]), np.sign(exact[known]))  # -1e-18 stays negative
    np.testing.assert_array_max_ulp(got[known], exact[known], maxulp=2)


def test_decimal_column_sliced_from_the_middle_keeps_its_rows():
    column = _decimal_column(["1.5", "-2.25", None, "3"]).chunk(0).slice(1, 3)
    got = contract.decimal_to_float64(pa.chunked_array([column]))
    assert got.to_pylist() == [-2.25, None, 3.0]


def test_model_only_decimals_are_fast_and_copied_ones_exact(folder):
    """features/money_flows feed models only; alerts/clusters decimals are copied into results."""
    assert contract.FEATURES.fast_decimals and contract.MONEY_FLOWS.fast_decimals
    assert not contract.ALERTS.fast_decimals and not contract.CLUSTERS.fast_decimals
    raw = pq.read_table(folder / contract.ALERTS_FILE).column("volume_usd")
    alerts = contract.read_arrow(folder, contract.ALERTS)
    assert alerts.column("volume_usd").equals(raw.cast(pa.float64()))


@pytest.mark.parametrize("bad", [None, ""])
def test_null_or_empty_alert_address(folder, bad):
    def change(t):
        addresses = t.column("address").to_pylist()
        addresses[7] = addresses[9] = bad
        return _set(t, "address", addresses, pa.string())
    _rewrite(folder / contract.ALERTS_FILE, change)
    _raises(folder, contract.ALERTS_FILE, "2 row(s) with null or empty 'address'")


def test_positions_in_key_finds_queries_and_refuses_a_repeated_key():
    table = pa.table({"id": pa.chunked_array([["a", "b"], ["c"]])})
    queries = pa.chunked_array([["c", None, "x"], ["a", "a"]])
    found = contract.positions_in_key(Path("t.parquet"), table, "id", queries)
    assert found.tolist() == [2, -1, -1, 0, 0]
    empty = contract.positions_in_key(Path("t.parquet"), table.slice(0, 0), "id", queries)
    assert empty.tolist() == [-1] * 5
    repeated = pa.table({"id": ["a", "b", "a", "c", "b"]})
    with pytest.raises(ContractError, match=r"t\.parquet: 2 duplicate 'id' value\(s\), e\.g\. "
                                            r"a, b"):
        contract.positions_in_key(Path("t.parquet"), repeated, "id", pa.array(["a"]))


def test_types_of_passed_on_columns_are_checked_from_the_schema_alone(tmp_path):
    path = tmp_path / contract.ALERTS_FILE
    fine = pa.schema([("description", pa.large_string()), ("volume_usd", pa.decimal128(38, 18)),
                      ("not_in_the_contract", pa.list_(pa.int8()))])
    contract.check_types(path, fine, contract.ALERTS, fine.names)
    bad = pa.schema([("evidence_json", pa.list_(pa.int64()))])
    with pytest.raises(ContractError, match=r"alerts\.parquet: column 'evidence_json' has type "
                                            r"list<item: int64> that cannot be cast to string"):
        contract.check_types(path, bad, contract.ALERTS, bad.names)
