"""Choosing a network and finding its folders; the settings several networks add."""

from pathlib import Path

import pytest

from shared import networks, schedule
from shared.settings import Settings, SettingsError


def two(settings):
    return settings.replace(NETWORKS=("bitcoin", "torus"))


def test_the_first_network_is_the_default_and_others_are_refused_by_name(settings):
    assert networks.choose(two(settings)) == "bitcoin"
    assert networks.choose(two(settings), "torus") == "torus"
    with pytest.raises(SettingsError, match=r"'ethereum' is not configured "
                                            r"\(NETWORKS: bitcoin, torus\)"):
        networks.choose(two(settings), "ethereum")


def test_one_network_keeps_the_roots_themselves(settings):
    assert networks.input_root(settings, "bitcoin") == settings.INPUT_DIR
    assert networks.output_root(settings) == settings.OUTPUT_DIR
    assert networks.input_root(settings, top="elsewhere") == Path("elsewhere")


def test_several_networks_each_get_a_folder_under_the_top_root(settings):
    s = two(settings)
    assert networks.input_root(s, "torus") == settings.INPUT_DIR / "torus"
    assert networks.output_root(s) == settings.OUTPUT_DIR / "bitcoin"
    assert networks.output_root(s, "torus", top="/srv/out") == Path("/srv/out/torus")
    with pytest.raises(SettingsError, match="ethereum"):
        networks.output_root(s, "ethereum")


def test_a_child_process_sees_one_network_whose_roots_are_the_folders_it_is_given(settings):
    child = Settings.from_env(networks.single(two(settings), "torus").to_env())
    assert (child.networks, child.multi_network) == (("torus",), False)


def test_an_empty_network_means_not_set_so_networks_decides():
    s = Settings.from_env({"NETWORK": "", "NETWORKS": "torus,bitcoin"})
    assert (s.NETWORK, s.networks) == ("torus", ("torus", "bitcoin"))
    assert Settings.from_env({"NETWORK": "", "NETWORKS": ""}).networks == ("bitcoin",)


def test_the_publish_deadline_must_be_a_time_of_day(settings):
    assert settings.PUBLISH_DEADLINE_UTC == "00:50"
    with pytest.raises(SettingsError, match="PUBLISH_DEADLINE_UTC='0:50'"):
        schedule.check(settings.replace(PUBLISH_DEADLINE_UTC="0:50"))
