"""Moving bytes between machines: raw sources in (``fetch``), built pools out and back (``publish``,
``download`` with mirror failover), and the resumable, verified HTTP transfer they share."""
