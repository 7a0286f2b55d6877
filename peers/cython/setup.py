"""Builds the two Cython peers: the same surface, default C build and module-state C build."""
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension("peer_cython", ["peer_cython.pyx"]),
    Extension(
        "peer_cython_modstate",
        ["peer_cython_modstate.pyx"],
        define_macros=[("CYTHON_USE_MODULE_STATE", "1")],
    ),
]

setup(ext_modules=cythonize(extensions))
