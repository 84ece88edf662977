"""Online rotation of the identifier keys (issue 17, item 3; docs/identifiers.md).

``keyfile`` adds and retires key versions in the key file; ``sealed`` lists every column the
hub seals with those keys; ``rekey`` counts rows per version and moves them to the active one
in short batches (``srhub keys``, and a job of the hub's retention runner).
"""
