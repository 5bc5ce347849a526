"""Automatic tags (contract section 11): taggers behind one small interface."""
