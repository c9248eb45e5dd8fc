"""The ``WWW-Authenticate: Bearer`` challenge of every 401 and 403 the HTTP edge sends.

What an MCP client reads from it (RFC 6750 §3, RFC 9728 §5.1, the MCP authorization spec):

* ``realm="session-buddy"``;
* ``resource_metadata="…"`` — where this server's Protected Resource Metadata is, when it
  publishes some (an OAuth issuer is configured): the client's discovery starts there;
* ``scope="…"`` — what to ask the authorization server for: on a 401 every scope a tool
  needs (``read write``), on a 403 the one missing (the spec's step-up);
* ``error`` and ``error_description`` — when a token was presented (``invalid_token``) or
  lacked a scope (``insufficient_scope``).

Every value is made safe for a quoted-string here, whatever text it carries: RFC 6750
allows only printable ASCII without ``"`` and ``\\``, so anything else becomes ``?`` (a
double quote ``'``) and a value is cut at :data:`MAX_VALUE_CHARS`. ``error_description``
comes last, so text in it can never be read as an earlier parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

REALM = "session-buddy"
MAX_VALUE_CHARS = 200


def quoted_value(text: str) -> str:
    """``text`` as RFC 6750 allows inside a challenge's quotes (%x20-21 / %x23-5B /
    %x5D-7E), bounded: a hostile value can neither break the header nor end the quotes."""
    safe = []
    for char in text[:MAX_VALUE_CHARS]:
        if char == '"':
            safe.append("'")
        elif " " <= char <= "~" and char != "\\":
            safe.append(char)
        else:
            safe.append("?")
    return "".join(safe)


@dataclass(frozen=True)
class BearerChallenge:
    """The parts of the challenge that are the same for every refusal of one server.

    ``resource_metadata``: the URL of its Protected Resource Metadata (None: it publishes
    none). ``scope``: what a 401 tells clients to ask for (None: nothing).
    """

    resource_metadata: str | None = None
    scope: str | None = None

    def header(
        self,
        *,
        error: str | None = None,
        description: str | None = None,
        scope: str | None = None,
    ) -> str:
        """The header's value; ``scope`` replaces the server's own (a 403's missing one)."""
        parameters = [("realm", REALM)]
        if self.resource_metadata:
            parameters.append(("resource_metadata", self.resource_metadata))
        wanted = scope or self.scope
        if wanted:
            parameters.append(("scope", wanted))
        if error:
            parameters.append(("error", error))
            if description:
                parameters.append(("error_description", description))
        return "Bearer " + ", ".join(
            f'{name}="{quoted_value(value)}"' for name, value in parameters
        )
