"""iTop tickets: settings, the REST client, the episode policy."""
