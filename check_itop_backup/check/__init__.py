"""The nagiosplugin plugin: settings, resource, finder, contexts and summary, trend, verification cache."""
