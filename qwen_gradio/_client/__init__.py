"""What ``QwenClient`` runs on: one reply's ``Job`` (``job``), the Spaces of the pool
(``member``), the streams that read a job (``streams``), the sync-over-async bridge
(``bridge``) and the background cancellations (``cancels``)."""
