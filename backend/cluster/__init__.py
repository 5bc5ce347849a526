"""`make cluster`: Chitram's scaled-out shape as plain processes on loopback (see README)."""
