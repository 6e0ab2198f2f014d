"""The network's light chain client: receipt verification, Merkle batching, anchoring and reward claims on an
EVM chain."""
