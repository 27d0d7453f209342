"""Toolbox Console: a terminal console and MCP gateway for giving AI agents tools safely."""

__version__ = "0.1.0"
