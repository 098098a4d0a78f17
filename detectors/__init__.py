"""Pure statistics for driftline: drift tests, change detectors, rate trackers, profiles."""
