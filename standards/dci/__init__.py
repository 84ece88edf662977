"""DCI (SPDCI) registry APIs: envelopes, signatures, queries, Social Registry records, our JSON
Schemas for the messages (``schemas/``, checked by ``validation``) and conformance checks against
the spec's OpenAPI files kept outside the repo (``openapi``). Pure functions and data."""
