"""Lineage files: open them, query ancestry, analyse and export phylogenies, plot.

>>> import alife
>>> lin = alife.lineage.open("replays/meadow-s1/lineage.h5")   # doctest: +SKIP
>>> lin.births.head(); lin.mrca(); lin.ancestry(1234)          # doctest: +SKIP

The file format is described in ``docs/lineage.md``; the writer is
:class:`alife.recording.lineage.LineageRecorder`.
"""

from __future__ import annotations

from pathlib import Path

from alife.lineage.reader import LineageFile, read_committed

__all__ = ["LineageFile", "open", "read_committed"]


def open(path: str | Path) -> LineageFile:  # noqa: A001 - the name users expect: alife.lineage.open
    """Open a lineage file and read every committed record (raises ``FileFormatError``)."""
    return LineageFile(path)
