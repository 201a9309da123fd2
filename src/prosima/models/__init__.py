"""The learning half: semantic encoders, the hybrid U-Net generator, losses, fingerprints, training.

Imports ``prosima.imaging`` only (never the ledger). Import the submodules directly, e.g.
``from prosima.models.unet import HybridUNet``; the most used names are re-exported here.
"""

from prosima.models.encoder import SemanticEncoder
from prosima.models.fingerprint import Fingerprint, compute_fingerprints
from prosima.models.inference import restore, restore_by_shards
from prosima.models.pretrained import load_pretrained
from prosima.models.unet import HybridUNet

__all__ = [
    "Fingerprint",
    "HybridUNet",
    "SemanticEncoder",
    "compute_fingerprints",
    "load_pretrained",
    "restore",
    "restore_by_shards",
]
