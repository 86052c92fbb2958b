"""Console scripts: ``initialize_db`` and the ``extrapypi`` command."""
