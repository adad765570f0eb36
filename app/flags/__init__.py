"""Flag backends behind one protocol (`base.FlagBackend`), chosen by configuration
(`config`, `registry`): the flagd file (default), Unleash and LaunchDarkly."""
