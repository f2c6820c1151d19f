"""The walkthrough's export server, on the runtime (servers/runtime)."""
