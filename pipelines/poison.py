"""Messages whose arguments do not fit their actor are invalid input, not a bug to retry.

`product_copy(1, 2, 3, 4)` would raise `TypeError` inside the actor call and be retried
like any unknown error; `ArgumentCheck` refuses it before the call, as `InvalidInput`, so
it is dead-lettered after one try with a reason naming the actor's signature. (Dramatiq
only lets `SkipMessage` out of a before-hook: the message is failed, then skipped, and
`DeadLetterReasons` records the `InvalidInput` behind it.) (Messages
that do not decode at all are handled by `pipelines.consumer`; unknown actors by
Dramatiq, which dead-letters them; schema-invalid payloads by each pipeline's own
validation, as `InvalidInput`.)
"""

from __future__ import annotations

import inspect
from typing import Any

from dramatiq.middleware import Middleware, SkipMessage

from adapters.errors import InvalidInput


class ArgumentCheck(Middleware):
    """Refuse a message whose arguments its actor cannot take, before the actor runs."""

    def before_process_message(self, broker: Any, message: Any) -> None:
        actor = broker.get_actor(message.actor_name)
        signature = inspect.signature(actor.fn)
        try:
            signature.bind(*message.args, **message.kwargs)
        except TypeError as exc:
            names = ", ".join(signature.parameters)
            problem = InvalidInput(f"arguments do not fit {message.actor_name}({names}): {exc}")
            message.fail()
            raise SkipMessage(str(problem)) from problem
