"""Widgets shared by several pages (the flag action panel, ...)."""
