"""Which network a command or job is about, and where that network's dates live.

With one network a network's roots are INPUT_DIR and OUTPUT_DIR themselves; with several,
INPUT_DIR/{network} and OUTPUT_DIR/{network} (docs/networks.md). `--input-dir` and
`--output-dir` always name the top roots, never a network's folder.
"""

from __future__ import annotations

from pathlib import Path

from shared.settings import Settings


def choose(settings: Settings, name: str | None = None) -> str:
    """The network asked for (default: the first configured); SettingsError names the
    configured ones when it is not one of them."""
    return settings.check_network(name or settings.default_network)


def input_root(settings: Settings, network: str | None = None,
               top: Path | str | None = None) -> Path:
    """A network's input root under INPUT_DIR (or under top, a command's --input-dir).

    With one network that is the root itself, whatever network a job names (as before
    NETWORKS existed); with several, an unconfigured network is a SettingsError naming them.
    """
    chosen = settings.replace(INPUT_DIR=Path(top)) if top else settings
    if not chosen.multi_network:
        return Path(chosen.INPUT_DIR)
    return chosen.network_input_dir(network)


def output_root(settings: Settings, network: str | None = None,
                top: Path | str | None = None) -> Path:
    """A network's output root under OUTPUT_DIR (or under top, a command's --output-dir); as
    input_root."""
    chosen = settings.replace(OUTPUT_DIR=Path(top)) if top else settings
    if not chosen.multi_network:
        return Path(chosen.OUTPUT_DIR)
    return chosen.network_output_dir(network)


def single(settings: Settings, network: str | None = None) -> Settings:
    """These settings narrowed to one network (default: the first), whose roots are then
    INPUT_DIR and OUTPUT_DIR as given: for a child process handed a network's own folders."""
    return settings.replace(NETWORK=network or settings.default_network, NETWORKS=())
