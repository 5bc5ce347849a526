"""The images domain: upload, metadata, serving and deletion."""
