"""Discriminators."""
