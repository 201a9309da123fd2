"""The append-only log: encoding, keys, Merkle trees, transactions, blocks, store, proofs, tree heads."""
