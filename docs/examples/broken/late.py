"""A plugin with a misspelled hook name: the engine refuses to start with it."""

from alife.plugins import hookimpl


@hookimpl
def alife_step_ned(sim, step):
    print("never called")
