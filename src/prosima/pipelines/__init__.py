"""End-to-end jobs built from both halves: the demo and the pipeline benchmark."""
