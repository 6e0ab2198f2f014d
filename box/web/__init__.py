"""The local web app: setup wizard, login, dashboard, uploads (aiohttp, server-rendered)."""
