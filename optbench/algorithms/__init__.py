"""Algorithm families. ``base`` holds the contract; each family is a module."""
