"""The package's version, in a module of its own: the engine and the front ends name it without importing the
package root (which imports the Python API, and with it most of the package)."""

__version__ = "0.1.0"
