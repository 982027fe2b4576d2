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
