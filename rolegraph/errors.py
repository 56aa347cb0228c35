"""One exception tree for rolegraph: every error a user can see, grouped by who must act.

    RolegraphError
    ├── UserError                 the caller must change something (config, input, a name)
    │   ├── ConfigError           rolegraph.toml or ROLEGRAPH__* variables are wrong
    │   ├── InputError            an input file is malformed (names the line and the field)
    │   ├── PromptError           a template is missing, does not parse, or lacks a variable
    │   ├── UnknownRoleError      a role name the runtime does not know (lists the known ones)
    │   └── HumanInputNeeded      a run stopped at `interrupt()` questions nothing answered (an
    │                             evaluation case with no scripted answer; names each question)
    ├── ModelError                the model could not answer at the transport level
    │   ├── ModelUnreachable      connection refused / timed out after retries (names the URL)
    │   ├── ModelHTTPError        a status that is not retried (4xx) or retries ran out (5xx, 429)
    │   ├── ModelStreamError      a streamed answer broke off, was malformed, or carried an error
    │   └── ServerStartError      the embedded model server could not be built or started
    ├── AgentOutputError          the model's output failed validation after every attempt
    ├── ReplayMismatch            a replay was asked what its trace did not record (code, a prompt
    │                             or an input changed; carries the diff)
    └── ScriptError               a test double (ScriptedModel) was used in a way its script forbids

Transport failures are retried inside the client; output failures are retried inside the agent
with feedback to the model. The two are never mixed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rolegraph.agents import AgentAttempt
    from rolegraph.models import TransportRetry


class RolegraphError(Exception):
    """Base of every error rolegraph raises on purpose."""


class UserError(RolegraphError):
    """A usage mistake. The message says what to do next."""


class ConfigError(UserError):
    """The runtime configuration is invalid."""


class InputError(UserError):
    """An input file is malformed."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        if field is not None:
            where += f"field '{field}': "
        super().__init__(where + message)
        self.path, self.line, self.field = path, line, field


class PromptError(UserError):
    """A template is missing, or a variable it uses was not given."""


class UnknownRoleError(UserError):
    """A role name the runtime has no model for."""

    def __init__(self, role: str, known: list[str]) -> None:
        super().__init__(
            f"no model for role '{role}' in the runtime; known roles: {', '.join(sorted(known)) or '(none)'}."
            f" Add [roles.{role}] (or [roles.default]) to rolegraph.toml."
        )
        self.role, self.known = role, known


class HumanInputNeeded(UserError):
    """A run stopped at questions (`interrupt()`) where nothing could answer them: give the answers
    (`rolegraph resume RUN --answer ...`, or an evaluation's `--answers FILE`)."""

    def __init__(self, message: str, *, run_id: str | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id


class ModelError(RolegraphError):
    """The model endpoint failed at the transport level."""

    retries: tuple[TransportRetry, ...] = ()
    """The transport retries made before giving up."""


class ModelUnreachable(ModelError):
    """The endpoint did not answer (connection refused, DNS, timeout) after retries."""

    def __init__(self, url: str, cause: str, hint: str | None = None) -> None:
        hint = hint or ("is the server running? Start one with `rolegraph serve embedded`, or set "
                        "the endpoint's base_url in rolegraph.toml")
        super().__init__(f"cannot reach model server at {url} ({cause}): {hint}")
        self.url, self.cause, self.hint = url, cause, hint


class ModelHTTPError(ModelError):
    """The endpoint answered with an error status that is not (or no longer) retried."""

    def __init__(self, url: str, status: int, body: str) -> None:
        super().__init__(f"model server at {url} answered HTTP {status}: {body[:500]}")
        self.url, self.status, self.body = url, status, body


class ModelStreamError(ModelError):
    """A streamed answer could not be read to its end: the server's stream was malformed, carried
    an error, or stopped before the answer was complete (after part of it had been passed on)."""

    def __init__(self, message: str, *, cut: bool = False) -> None:
        super().__init__(message)
        self.cut = cut
        """The stream only stopped early (nothing malformed): before any text was passed on, such a
        stream is asked for again like a dropped connection."""


class ServerStartError(ModelError):
    """The embedded model server could not be started."""


class AgentOutputError(RolegraphError):
    """An agent's output failed validation on every attempt; carries all of them."""

    def __init__(self, agent: str, attempts: list[AgentAttempt]) -> None:
        last = attempts[-1].error if attempts else "no attempt"
        super().__init__(
            f"agent '{agent}' gave no valid output in {len(attempts)} attempt(s); last error: {last}"
        )
        self.agent, self.attempts = agent, attempts


class ScriptError(RolegraphError):
    """A ScriptedModel got a call it did not expect, or ended with steps unconsumed."""


def one_line(exc: BaseException) -> str:
    """The message a CLI shows for an error: one line, no traceback."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class ReplayMismatch(RolegraphError):
    """The graph asked something the trace did not record: code, a prompt or an input changed."""

    def __init__(self, message: str, diff: str = "") -> None:
        super().__init__(message + (f"\n{diff}" if diff else ""))
        self.diff = diff
