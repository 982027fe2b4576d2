"""The services (apps) of the miner stack; each is reached through `aml-miner <command>`."""
