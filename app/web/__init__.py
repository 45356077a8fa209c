"""HTTP: the aiohttp application (JSON API, console, webhooks, health) over the services."""
