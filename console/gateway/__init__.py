"""The MCP gateway: agents in over Streamable HTTP, granted tools out over stdio."""
