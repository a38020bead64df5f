"""apitrail package."""
