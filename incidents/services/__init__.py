"""Services that change incidents, whistles and summonses, one module per noun.

Every state change runs in one transaction that writes the row, a timeline entry and the
broadcast (sent on commit). An action the current state does not allow raises
:class:`command.errors.TransitionNotAllowed`; an actor without the right raises
:class:`command.errors.ActionForbidden`. The API turns those into precise 409 and 403 answers.
"""
