# cython: language_level=3, freethreading_compatible=True, subinterpreters_compatible=own_gil
"""interpsafe peers: the comparison module with Cython, built with CYTHON_USE_MODULE_STATE=1."""

include "surface.pxi"
