"""X-Mark: saliency-guided clean-label watermarks that let the owner of an image dataset prove that a
suspicious model was trained on it (issue 7; arXiv 2602.09284), with BadNets and Blended baselines.

Pure functions of arrays: ``data`` loads images, ``classifier`` trains surrogates and suspects,
``saliency`` finds where to mark, ``generator``/``train`` learn the marks, ``marking`` marks a
dataset and writes its ``key``, ``verify`` tests a black-box model. Nothing here touches the ledger;
``prosima.provenance.watermark_keys`` commits keys to it.
"""
