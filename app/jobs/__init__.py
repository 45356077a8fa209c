"""Durable work on PostgreSQL with Procrastinate: one thin task per job, a worker, the periodic scans."""
