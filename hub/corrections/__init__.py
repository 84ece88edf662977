"""Corrections through change requests: proposals to correct a household's or a person's
field or fact, a second person's approval or rejection, the application through the registry
services with the source ``correction``, and the history of each request
(docs/corrections.md)."""
