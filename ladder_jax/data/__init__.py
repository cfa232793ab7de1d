"""Records, the SpatialLadder-26k release, the processor, Grain pipelines and the toy world."""
