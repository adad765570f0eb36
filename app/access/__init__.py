"""Who may do what: identities (signed in, local, CLI), roles from `access.yaml`, and the
checks the logic layer makes before a flag action, an incident write or an upload."""
