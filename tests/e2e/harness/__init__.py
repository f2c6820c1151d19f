"""The end-to-end harness: real tools, servers started on loopback and stopped by PID."""
