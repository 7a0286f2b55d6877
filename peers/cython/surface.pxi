# The comparison module's surface (peers/README.md), included by peer_cython.pyx and
# peer_cython_modstate.pyx, which differ only in their C build (CYTHON_USE_MODULE_STATE).

cimport cython


class Error(Exception):
    """The module's exception: raise_error(msg) raises Error(msg)."""


cdef class Counter:
    """Counter(): incr() adds 1 and returns the count."""

    cdef long long count

    # On a free-threaded build threads may call incr on one Counter: a critical section on the
    # instance (a no-op under a GIL).
    @cython.critical_section
    def incr(self):
        """Add 1 and return the new count."""
        self.count += 1
        return self.count

    @property
    def value(self):
        """The count."""
        with cython.critical_section(self):
            return self.count


def identity(obj):
    """identity(obj): return obj."""
    return obj


def raise_error(msg):
    """raise_error(msg): raise Error(msg)."""
    raise Error(msg)


def interned():
    """The interned str 'interpsafe', the same object every call (Cython's string constant,
    interned and kept with the module's other constants)."""
    return "interpsafe"


# The module-level cache of cached(): a dict in the module's globals, so one per module object
# (per interpreter); setdefault makes the first fill race-free on a free-threaded build.
_cache = {}


def cached():
    """A list made on first use, the same object every call."""
    obj = _cache.get("list")
    if obj is None:
        obj = _cache.setdefault("list", [])
    return obj


def call(f, x):
    """call(f, x): return f(x)."""
    return f(x)
