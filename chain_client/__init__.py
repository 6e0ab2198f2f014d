"""Signed, hash-chained records, Merkle batching and the EVM light client. Arrives with its issue."""
