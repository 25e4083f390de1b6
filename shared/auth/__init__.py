"""Who is calling: HS256 tokens, identity-provider tokens (OIDC), the console's
sign-in, demo users and the registry of people seen. API keys live in
``shared.api_keys``."""
