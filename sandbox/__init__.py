"""The sandbox runner pool's worker: the official SDK's `EnvironmentWorker`, with the pool's
limits enforced in code rather than advertised in environment variables.

Each claimed session runs through `EnvironmentWorker.handle_item` inside a hard deadline, with
every tool wrapped by a per-session call counter, in a fresh workspace that is emptied when the
session ends. The environment key is read from a file and stays in the worker: the tools run
in `sandbox.toolhost`, another process under another user (the chart's `tools` container),
which kills everything a session started when it ends.
"""
