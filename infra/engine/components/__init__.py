"""One ComponentResource per file: each owns one part of an environment."""
