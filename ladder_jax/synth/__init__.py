"""SpatialVLM-style synthesis of metric spatial QA from RGB-D scenes."""
