"""Proof of useful work (after Ball, Rosen, Sabin and Vasudevan, "Proofs of Useful Work"): the
ledger's nodes earn a round by training a model instead of hashing. Weights are opaque bytes and
the work (``work.UsefulWork``) is anything that trains, scores deterministically and measures
distance.

One round ``r`` from the chain model ``W`` (``prev = SHA-256(W)``), nodes indexed as the registry
sorts their ids (``commitments`` has the hashes, ``messages`` the signed messages):

1. Train. Node ``i`` trains from ``W`` with ``train_seed_i = H("train", seed, r, i)`` to ``w_i``.
2. Commit. It draws ``salt_i = SHA-256(its Ed25519 signature of (r, prev))`` (deterministic, yet
   unknowable without its key) and sends a signed ``commit{r, prev, node id, c_i}`` with
   ``c_i = H("commit", r, node id, SHA-256(w_i), salt_i)``. The network stamps each commit with
   the tick it arrived; those after the deadline (``RoundConfig.commit_deadline``) are late.
3. Validation seed. ``v = H("validation", r, prev, sorted on-time commitments)`` (each node's
   first to arrive): fixed only once every commitment is, so nobody can fit the validation batch
   in advance, and withholding a reveal cannot change it.
4. Reveal. Node ``i`` sends a signed ``reveal{r, node id, w_i, salt_i, claimed score}``.
5. Validate. Every validator independently runs ``decide.decide``, a pure function of the
   messages: it re-scores every proposal and the chain model on ``v``; the threshold is
   ``max(min_score, score(W, v))``, so a winner is never worse than the chain model.
6. Decide. The best valid proposal at or above the threshold wins (ties: the earliest commitment);
   the round record (``record.RoundRecord``: every seed, commitment, salt, score and refusal with
   its reason, the winner's weights hash, score and node id) is committed through the ledger's
   consensus ``Committee`` as a ``pouw.round`` transaction signed by the winner, so the PoUW chain
   is an ordinary ledger chain (``chain``).

Refusals (``refusals``), checked in this order for each committing node in commitment order (tick,
then index): ``equivocation`` (two different signed commits or reveals), ``late`` (commit after
the deadline), ``no_reveal`` (committed, never revealed), ``bad_reveal`` (weights and salt do not
open the commitment), ``copy`` (weights hash equal to the chain model's or to an earlier
commitment's revealed weights, or ``distance`` to either below ``copy_distance``),
``invalid_weights`` (the work cannot evaluate them), ``score_mismatch`` (``|claimed -
re-evaluated| > score_tolerance``; scores are re-evaluated on one deterministic CPU path, so honest
claims reproduce bit for bit and the default 1e-6 only absorbs summation-order differences between
builds) and ``below_threshold``. Messages whose signature, encoding, round or chain model do not
check are dropped unattributed (``dropped``): anyone can forge them, so they never count against
the node they name.

Limits: as in any commit-then-reveal beacon, the last node to commit could grind its commitment
to bias ``v`` (a deployment would add a VRF or a delay function); the network and its ticks are
simulated in process (``play.play_round``, with cheats from ``behaviour``), with the ledger's
consensus as the only real protocol.
"""
