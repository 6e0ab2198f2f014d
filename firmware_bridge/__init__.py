"""Everything that talks to printer firmware: the Marlin host protocol, the serial transport, a virtual printer."""
