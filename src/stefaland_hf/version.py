"""The version of stefaland-hf: ``stefaland_hf.__version__``, and what run manifests record."""

__version__ = "0.1.0"
