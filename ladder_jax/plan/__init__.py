"""`ladder-jax plan`: compile every stage of a curriculum config for its target hardware before any run."""
