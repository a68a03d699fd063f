"""Veritrain requester role. Imports veritrain, never the other roles."""
