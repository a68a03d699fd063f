"""Veritrain verifier role. Imports veritrain, never the other roles."""
