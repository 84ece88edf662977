"""Our JSON Schemas (draft 2020-12) for the DCI messages the hub receives and sends (data)."""
