"""How nodes agree on the next block: overlay, placement, voting, rounds, transport, storage, committee."""
