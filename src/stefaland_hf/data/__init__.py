"""Land-surface datasets as ``datasets`` builders, plus windows, splits and normalization."""
