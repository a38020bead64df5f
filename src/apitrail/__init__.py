"""apitrail: local-first API security — static route/auth scanner and request identity trace pipeline."""

__version__ = "0.1.0"
__all__ = ["__version__"]
