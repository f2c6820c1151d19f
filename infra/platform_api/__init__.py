"""The managed side of an environment, as Pulumi resources over the official `anthropic` SDK.

Not named `platform`: the engine starts the program and the dynamic-provider host
with `infra/` as the working directory, where a `platform` package would shadow
Python's standard `platform` module.
"""
