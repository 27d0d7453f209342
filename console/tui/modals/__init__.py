"""Modal dialogs: confirmations, errors, prompts, secrets shown once."""
