"""Veritrain worker role. Imports veritrain, never the other roles."""
