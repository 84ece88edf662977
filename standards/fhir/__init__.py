"""FHIR R4B: canonical registry records -> strictly valid ``fhir.resources.R4B`` resources.

Pure functions; the hub's /fhir/ API serves what these build.
"""
