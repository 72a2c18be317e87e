"""Watching worlds: a numpy renderer (:mod:`render`), the pygame window (:mod:`app`), the live
view for ``alife run --watch`` (:mod:`live`) and video export (:mod:`export`).

Only :mod:`alife.viewer.render` is imported without pygame; the rest need ``alife[viewer]``.
"""

import os as _os

# pygame prints a banner on import unless told not to; the CLI's output should be ours alone
_os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
