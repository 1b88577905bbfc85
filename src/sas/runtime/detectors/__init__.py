"""Request-level detectors; each implements :class:`sas.runtime.detectors.base.Detector`."""
