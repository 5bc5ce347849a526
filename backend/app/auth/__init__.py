"""Accounts: users, tokens, API keys, and who is calling."""
