"""`sweepctl serve`: the REST API, the dashboard and the controller that runs queued sweeps."""
