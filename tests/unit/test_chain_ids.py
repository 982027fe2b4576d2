import pytest
from rq import Retry

from shared import jobs
from shared.settings import Settings, SettingsError


def test_job_ids_are_deterministic_and_use_only_rq_characters():
    assert jobs.download_id("bitcoin", "2025-10-26", 7) == "download-bitcoin-2025-10-26-7"
    assert jobs.process_id("torus", "2025-01-02", "30") == "process-torus-2025-01-02-30"
    assert jobs.download_id("bitcoin", "2025-10-26", "7") == "download-bitcoin-2025-10-26-7"


@pytest.mark.parametrize("network,date,window,names", [
    ("bit:coin", "2025-10-26", 7, "network"),
    ("bit-coin", "2025-10-26", 7, "network"),
    ("", "2025-10-26", 7, "network"),
    ("bitcoin", "2025-13-01", 7, "2025-13-01"),
    ("bitcoin", "26.10.2025", 7, "26.10.2025"),
    ("bitcoin", "2025-10-26", 0, "window_days"),
    ("bitcoin", "2025-10-26", "7d", "window_days"),
])
def test_a_bad_part_of_a_job_id_is_refused_by_name(network, date, window, names):
    with pytest.raises(jobs.JobArgumentError, match=names):
        jobs.download_id(network, date, window)


def test_retry_policy_comes_from_settings():
    env = {"JOB_RETRIES": "4", "JOB_RETRY_INTERVALS": "5,60"}
    retry = jobs.retry_policy(Settings.from_env(env))
    assert isinstance(retry, Retry)
    assert (retry.max, retry.intervals) == (4, [5, 60])
    assert jobs.retry_policy(Settings.from_env({"JOB_RETRIES": "0"})) is None


def test_a_malformed_retry_interval_names_the_variable():
    with pytest.raises(SettingsError, match="JOB_RETRY_INTERVALS"):
        jobs.retry_policy(Settings.from_env({"JOB_RETRY_INTERVALS": "30,soon"}))


def test_job_names_are_dotted_strings_of_the_services():
    assert jobs.DOWNLOAD_JOB == "services.downloader.jobs.download_job"
    assert jobs.PROCESS_JOB == "services.processor.jobs.process_job"


def test_status_line_names_state_progress_reason_and_kept_output():
    status = jobs.DateStatus("process-bitcoin-2025-10-26-7", "failed", "process",
                             "ContractError: alerts.parquet: duplicate alert_id", "2025-10-26-x",
                             {"step": "processing"})
    line = status.describe()
    assert "failed" in line and "duplicate alert_id" in line and "step=processing" in line
    assert "previous output 2025-10-26-x still published" in line
