"""agent-perimeter: the Pulumi program and its offline commands."""
