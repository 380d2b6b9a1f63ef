"""Problem families. ``base`` holds the contracts; each family is a module or subpackage."""
