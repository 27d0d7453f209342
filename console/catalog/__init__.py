"""The server catalog: built-in entries (a data file) plus the user's own, and imports.

``load_catalog(paths)`` gives the merged catalog; ``console.catalog.importer`` plans the
import of Claude Desktop, Cursor and VS Code MCP configurations.
"""

from __future__ import annotations

from console.catalog.loader import Catalog, CatalogError, load_builtin, load_catalog
from console.catalog.model import CatalogEntry

__all__ = ["Catalog", "CatalogEntry", "CatalogError", "load_builtin", "load_catalog"]
