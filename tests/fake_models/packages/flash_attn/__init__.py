"""A stand-in for the flash-attn package (not installable on a CPU machine): importable, so that a test can
tell the kit's T4 emulation refusing it from the package being absent."""

__version__ = "2.8.3"
