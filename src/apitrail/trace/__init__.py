"""Request identity trace: parse access logs of every hop into one canonical hop record, join, classify."""
