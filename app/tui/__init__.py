"""`tasksgodzilla tui`: a terminal client of the service that talks to it over its HTTP API only."""
