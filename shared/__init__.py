"""Library code shared by the services: settings, the SOT contract, storage layout. No entry points."""
