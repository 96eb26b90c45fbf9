"""Users, API keys, authentication and what a key may reach."""
