"""hub/api"""
