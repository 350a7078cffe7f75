"""Staff console and public web assets (widget, demo agency page), served by aiohttp."""
