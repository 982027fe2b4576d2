from pathlib import Path

import pytest

from shared.settings import Settings, SettingsError


def test_defaults_match_the_documented_ones():
    s = Settings.from_env({})
    assert s.INPUT_DIR == Path("volumes/input")
    assert s.OUTPUT_DIR == Path("volumes/output")
    assert s.MODELS_DIR == Path("trained_models")
    assert s.WINDOW_DAYS == 7


def test_environment_values_are_typed():
    s = Settings.from_env({"WINDOW_DAYS": "30", "MINER_REQUIRE_VALIDATOR_PERMIT": "false",
                           "MINER_VALIDATOR_HOTKEYS": "5A, 5B,,", "OUTPUT_DIR": "/x"})
    assert s.WINDOW_DAYS == 30
    assert s.MINER_REQUIRE_VALIDATOR_PERMIT is False
    assert s.MINER_VALIDATOR_HOTKEYS == ("5A", "5B")
    assert s.OUTPUT_DIR == Path("/x")


@pytest.mark.parametrize("name,value", [("WINDOW_DAYS", "seven"), ("MINER_PUBLISH_ENDPOINT", "maybe"),
                                        ("NETUID", "root")])
def test_a_malformed_value_names_the_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_every_setting_is_documented_in_env_example():
    import re
    text = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.M))
    assert documented == set(Settings.__dataclass_fields__)


def test_an_optional_integer_is_none_when_unset_or_empty_and_typed_when_set():
    assert Settings.from_env({}).NETUID is None
    assert Settings.from_env({"NETUID": "  "}).NETUID is None
    assert Settings.from_env({"NETUID": "0"}).NETUID == 0


def test_to_env_is_the_inverse_of_from_env():
    s = Settings.from_env({}).replace(NETUID=None, MINER_VALIDATOR_HOTKEYS=("5A", "5B"),
                                      MINER_REQUIRE_VALIDATOR_PERMIT=False, OUTPUT_DIR=Path("/x"))
    env = s.to_env()
    assert env["NETUID"] == "" and env["MINER_REQUIRE_VALIDATOR_PERMIT"] == "false"
    assert Settings.from_env(env) == s
    assert Settings.from_env(s.replace(NETUID=0).to_env()).NETUID == 0


def test_networks_default_to_network_alone():
    settings = Settings.from_env({"NETWORK": "torus"})
    assert settings.networks == ("torus",)
    assert not settings.multi_network
    assert settings.network_output_dir() == settings.OUTPUT_DIR
    assert settings.network_input_dir("torus") == settings.INPUT_DIR


def test_networks_list_sets_the_default_and_per_network_roots():
    settings = Settings.from_env({"NETWORKS": "bitcoin, torus,ethereum", "OUTPUT_DIR": "/o",
                                  "INPUT_DIR": "/i"})
    assert settings.networks == ("bitcoin", "torus", "ethereum")
    assert settings.NETWORK == "bitcoin"
    assert settings.multi_network
    assert settings.network_output_dir("torus") == Path("/o/torus")
    assert settings.network_input_dir() == Path("/i/bitcoin")


def test_network_and_networks_must_agree():
    assert Settings.from_env({"NETWORK": "torus", "NETWORKS": "torus,bitcoin"}).NETWORK == "torus"
    with pytest.raises(SettingsError, match="NETWORK=bitcoin disagrees with NETWORKS=torus,ethereum"):
        Settings.from_env({"NETWORK": "bitcoin", "NETWORKS": "torus,ethereum"})


@pytest.mark.parametrize("env, message", [
    ({"NETWORKS": "bitcoin,bitcoin"}, "names a network twice"),
    ({"NETWORKS": "bitcoin,../x"}, "'../x'"),
    ({"NETWORK": "Bitcoin"}, "'Bitcoin'"),
])
def test_bad_network_names_are_refused(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_unknown_network_names_the_configured_ones():
    settings = Settings.from_env({"NETWORKS": "bitcoin,torus"})
    with pytest.raises(SettingsError, match=r"'ethereum' is not configured \(NETWORKS: bitcoin, torus\)"):
        settings.network_output_dir("ethereum")
