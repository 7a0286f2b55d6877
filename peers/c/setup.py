"""Builds peer_c, the hand-written C floor, with setuptools (no build requirements beyond it)."""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "peer_c",
            ["peer_c.c"],
            extra_compile_args=["-std=c11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
        )
    ]
)
