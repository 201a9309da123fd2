"""Proof of useful work: the ledger's nodes earn a round by training a model instead of hashing."""
