"""The analytics service: counts every click exactly once and serves stats from rollups."""
