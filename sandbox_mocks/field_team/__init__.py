"""A simulated field team: enumerators with ODK Collect-like devices that fill the hub's
forms and send them over the OpenRosa API, some of them after working offline.

It plays an outside system, so it knows the hub only through OpenRosa (form list, form
download, submission) and imports nothing of the hub.
"""
