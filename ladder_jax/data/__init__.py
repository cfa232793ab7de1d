"""Records, the SpatialLadder-26k release, RGB-D scene folders, the processor, Grain pipelines and the toy world."""
