"""The I/O-free core: what a Space is and what its chat event takes (``space``), messages into
the Space's inputs (``messages``, ``options``), and the Space's queue messages into a reply's
typed events (``reply``). No module here makes a request or starts a thread."""
