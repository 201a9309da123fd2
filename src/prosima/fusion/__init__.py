"""BMIF: multimodal medical image fusion (MRI with CT, PET or SPECT) by an Inception CNN that also
runs on CKKS ciphertexts. Never imports the ledger: the proof-of-useful-work chain joins them in
``prosima.pipelines.fusion_chain``."""
