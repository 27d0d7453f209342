"""Console operations shared by the CLI and the TUI: validate, change the vault, audit."""
