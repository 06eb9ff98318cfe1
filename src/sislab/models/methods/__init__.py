"""models/methods"""
