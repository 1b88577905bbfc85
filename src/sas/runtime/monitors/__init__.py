"""Process-level monitors installed once at cold start: audit hook, cloud SDK, cold start, contamination."""
