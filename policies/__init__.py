"""agent-perimeter's CrossGuard policy pack; the rules live in `policies.rules`."""
