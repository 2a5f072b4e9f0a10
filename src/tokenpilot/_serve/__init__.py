"""The proxy (`tokenpilot serve`): routes, upstream client, usage normaliser, sessions, optimize."""
