"""Launch-file helpers shared by ``launch/*.launch.py``: end the launch, with a failing status, when a process dies.

``launch`` has no action that sets ``ros2 launch``'s exit status: ``LaunchService.run`` returns 1 only when an
exception escapes an action or event handler (it then shuts the launch down with the exception's text as the
reason, and ``ros2 launch`` exits with that status). ``end_launch_on_exit`` uses exactly that, so a node that dies
at start (a bad bundle path, an impossible parameter) ends the launch with a non-zero status and one line saying
which process died with which code, instead of a launch that keeps running, or exits 0, without its node.
"""

from __future__ import annotations

from collections.abc import Sequence

from launch.action import Action
from launch.actions import EmitEvent, RegisterEventHandler, TimerAction
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.events.process import ProcessExited
from launch.launch_context import LaunchContext
from launch.some_substitutions_type import SomeSubstitutionsType


class ProcessDiedError(RuntimeError):
    """A launched process exited with a non-zero code while the launch was running (ends the launch, status 1)."""


def end_launch_on_exit(action: Action, what: str, *, on_success: Sequence[Action] | None = None,
                       linger: SomeSubstitutionsType | None = None) -> RegisterEventHandler:
    """An event handler for ``action``'s process exit while the launch is running (not when the launch itself is
    stopping it): a non-zero code fails the launch naming ``what`` and the code; code 0 runs ``on_success`` (default:
    shut the launch down with the reason "``what`` finished"), after ``linger`` seconds if given."""

    def on_exit(event: ProcessExited, context: LaunchContext) -> list[Action] | None:
        if context.is_shutdown:
            return None
        if event.returncode != 0:
            raise ProcessDiedError(f"{what} ({event.process_name}) exited with code "
                                   f"{event.returncode}; its log above says why")
        actions = list(on_success) if on_success is not None else \
            [EmitEvent(event=Shutdown(reason=f"{what} finished"))]
        if linger is not None:
            return [TimerAction(period=linger, actions=actions)]
        return actions

    return RegisterEventHandler(OnProcessExit(target_action=action, on_exit=on_exit))
