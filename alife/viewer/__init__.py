"""Watching worlds: a numpy renderer (:mod:`render`), the pygame window (:mod:`app`), the live
view for ``alife run --watch`` (:mod:`live`) and video export (:mod:`export`).

Only :mod:`alife.viewer.render` is imported without pygame; the rest need ``alife[viewer]``.
"""
