"""The application layer: what prosima does for a caller, one function per action (anchor files,
restore a file, verify a file, find records, anchor a model, query the ledger...), each returning a
typed result.

The command line (``prosima.cli``) and the HTTP service both call these functions. They compose
``prosima.provenance``, ``prosima.pipelines`` and the halves below; they raise ``prosima.errors``
subclasses for refused input and negative verdicts, and never print or exit.
"""
