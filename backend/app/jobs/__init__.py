"""Background jobs: thumbnails, run in-process or by `chitram worker` through arq."""
