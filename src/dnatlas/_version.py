"""The package version, in a base module so that low modules can name it without importing
the package root."""

__version__ = "0.1.0"
