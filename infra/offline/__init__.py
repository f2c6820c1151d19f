"""What runs without the engine: `python -m infra <command>` (`cli`, `commands/`), the
program under Pulumi mocks with its charts rendered (`mocked`), the audit, and the
manifest folders, source locations, SARIF and helm the commands read and write."""
