"""Local stand-ins for external services (only the LLM is faked)."""
