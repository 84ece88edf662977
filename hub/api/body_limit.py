"""The request size limit for streamed (chunked) bodies too: 413, never a truncated body.

A body sent with ``Transfer-Encoding: chunked`` has no Content-Length to check up front, so
werkzeug reads it through a stream that stops at ``MAX_CONTENT_LENGTH``, and stops *quietly*:
reading all of it returns the first ``limit`` bytes as if that were the whole body. A JSON body
over the limit then failed to parse and was answered 400 "not valid JSON", which tells the
client the wrong thing. ``LimitedRequest.get_data`` looks one byte past a body that filled the
limit: if there is more, the answer is 413, as for a body whose Content-Length is too large.
"""

from __future__ import annotations

from typing import Any

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

__all__ = ["LimitedRequest"]


class LimitedRequest(Request):
    """Flask's request, refusing a streamed body over the limit with 413."""

    def get_data(self, *args: Any, **kwargs: Any) -> Any:
        data = super().get_data(*args, **kwargs)
        limit = self.max_content_length
        if (
            limit is not None
            and self.content_length is None
            and isinstance(data, bytes | str)
            and len(data) >= limit
        ):
            source = self.environ.get("wsgi.input")
            if source is not None and source.read(1):
                raise RequestEntityTooLarge()
        return data
