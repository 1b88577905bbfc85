"""Platform adapters: each turns its platform's request into a RequestContext and a verdict into a response."""
