"""Operations commands: the `chitram` command line, backup and restore, reconcile."""
