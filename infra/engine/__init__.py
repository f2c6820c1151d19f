"""What runs under `pulumi up`: the environment assembled (`stack`), its components, the
objects the program registers itself, the preflight and the boundary repair.

The platform's and the certificates' dynamic resources (`infra/platform_api/`,
`infra/certificates/`) are engine code too, kept at the top of `infra/`: the engine stores
each dynamic provider by its module path in every stack's state, so a move would leave the
existing stacks' deletes and refreshes unable to load it."""
