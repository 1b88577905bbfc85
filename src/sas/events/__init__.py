"""Runtime event records and the sinks that carry them (the floor shared by runtime and forensics).

The runtime writes events through a :class:`~sas.events.sink.Sink`; forensics reads what the sinks stored.
"""

from sas.events.record import RuntimeEvent, Verdict
from sas.events.sink import Sink, open_sink

__all__ = ["RuntimeEvent", "Sink", "Verdict", "open_sink"]
