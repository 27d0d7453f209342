"""Tool trust: pinning, definition scanning, and keeping secrets out of what is shown."""
