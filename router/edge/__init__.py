"""The edge: what every network listener shares to refuse bad input cleanly.

A listener (the control plane, the HTTP gateway, the SMTP server) answers a malformed or abusive request
with the right 4xx (or 5xx SMTP code) in its own protocol's form, within bounded time and memory, and logs
at most one line per refusal, rate-limited, never a traceback. The pieces:

* `rejects`: `RejectLog`, the rate-limited "refused" line (a token bucket; the lines left out are counted
  in the next one), and `RateLimitFilter`, the same budget for a library's own logger;
* `bodies`: `read_body`, a request body with a size cap, a time cap, and its Content-Encoding (gzip,
  deflate) decoded under the same size cap and a time cap; anything else refused with `BodyRefused`;
* `http`: `GuardedServer` / `GuardedAppRunner`, aiohttp servers whose malformed-HTTP answers (bad request
  line, URL or header too long, too many headers, bad method or version, broken framing) go through the
  listener's own `render` and `RejectLog` instead of aiohttp's text/plain 400 and ERROR traceback, and
  `HttpLimits`, the header sizes and timeouts users set in the config.

May import: router.core only (like logs and metrics, it sits below every part that listens).
"""
