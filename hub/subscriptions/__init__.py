"""Subscriptions: who wants which registry events, through which channel, and what they got.

``tables`` holds subscriptions and the delivery log, ``service`` creates and changes them,
``matching`` and ``fanout`` decide per event who gets what (consent applied), ``delivery``
runs the webhook / DCI senders (``forwarding`` the AMQP forwarders of an embedded hub),
``redrive`` re-sends history to one subscription, ``retention`` prunes the delivery log.
"""
