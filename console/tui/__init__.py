"""The console: a Textual app over the services. Only this package imports Textual."""
