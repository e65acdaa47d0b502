"""Rendering: the project at a time as a frame request; (soon) audio mixdown and video."""
