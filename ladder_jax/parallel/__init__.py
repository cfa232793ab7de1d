"""Device mesh, multi-host start-up and the one table of sharding rules."""
