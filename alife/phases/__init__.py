"""The phases of a step that :class:`alife.Simulation` orchestrates: physics, reproduction, the
extinction policy."""
