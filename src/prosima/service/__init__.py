"""``prosima serve``: the long-running service. One process holds the ledger, its models and its
fingerprint index open (``prosima.app.session.Session``) and answers a JSON API over HTTP: verify
(open to anyone), anchor and restore (an API token), records, proofs, tree heads, model versions and
exports. It calls the same application layer as the command line, so the rules are the same.

``create_app(settings)`` (module ``app``) builds the ASGI application; ``prosima.cli.serve`` runs it
on uvicorn.
"""
