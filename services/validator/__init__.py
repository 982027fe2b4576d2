"""The local validator: judge the miner's published results the way the subnet's validator will."""
