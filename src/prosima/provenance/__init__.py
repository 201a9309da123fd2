"""Where the two halves meet: records that tie images and models to the ledger."""
