"""The hub's generic worker runtime: it consumes queues and runs the handlers it is given.

It knows no pipeline, no monitoring and no subscriptions (``hub.assembly`` composes them):

- ``handlers``: ``HandlerRegistry`` (routing key or topic pattern -> handler), ``HandlerContext``
  and ``HandlerResult``, the contract between the runtime and a handler;
- ``middleware``: hooks around every handling (monitoring attaches here);
- ``runtime``: ``ConsumerRuntime``, the consume loop with batching, idempotency and retries;
- ``loop``: the one worker loop (connect, serve, reconnect, stop) every worker shares;
- ``retry``: the one ``RetryPolicy``; ``outbound``: the one resilient HTTP sender;
- ``retention``: the shape of a retention job; ``idempotency``: the processed-message store;
- ``connect``, ``status``, ``errors``, ``topology``, ``service`` (threads and signals).

Submodules are imported where used, so importing the table module ``hub.workers.idempotency``
for the schema stays cheap.
"""
