"""The hub's DCI Social Registry server: sender keys and callback URIs, transactions, replay
protection, subscriptions, and the signed HTTP callbacks it sends (on-search, notify...)."""
