"""The chaos suite: faults injected into the running system, with assertions."""
