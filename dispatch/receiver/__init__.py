"""The receiver: the HTTP side of the loop (``nudgelab serve``). Gateways' callbacks and tracked
links come in, go to the spool as received (fsync'd before the answer), and ingestion reads them
with the vendor readers; the receiver never writes the warehouse."""

DEFAULT_URL = "http://127.0.0.1:8600"   # nudgelab serve's default address, as links and dlr-urls name it
