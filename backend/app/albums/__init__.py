"""Albums: a user's ordered collections of their own images (contract section 11)."""
