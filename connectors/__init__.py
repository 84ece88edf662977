"""Connectors to partner systems: one package per partner kind, on the contract in ``base``.

Connectors import ``connectors.base``, ``mappings`` and ``standards``, never ``hub``: the hub
passes in what they need (a raw-record publisher, checkpoint store, clock, status).
"""
