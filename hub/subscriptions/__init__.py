"""Subscriptions: who wants which registry events, through which channel, and what they got.

``tables`` holds subscriptions and the delivery log, ``service`` creates and changes them,
``matching`` and ``payload`` decide per event who gets what (consent applied), ``delivery``
runs the webhook / DCI senders, ``redrive`` re-sends history to one subscription.
"""
