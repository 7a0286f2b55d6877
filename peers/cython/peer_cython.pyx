# cython: language_level=3, freethreading_compatible=True, subinterpreters_compatible=own_gil
"""interpsafe peers: the comparison module with Cython, default C build (module globals)."""

include "surface.pxi"
