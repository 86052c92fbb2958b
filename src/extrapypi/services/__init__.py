"""Business rules: accounts, packages, uploads, index data. Storage is passed in."""
