"""The audit of reads (issue 17 §2): who read which household and person records, for which
purpose, when and through which channel; append-only and hash-chained so that an edited,
deleted or reordered row is detected (``hub.readaudit.chain``)."""
