"""The top floor: the worker module (Procfile), the HTTP API (web) and the CLI, over one composition root."""
