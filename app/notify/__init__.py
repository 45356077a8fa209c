"""Notification channels' wire exchanges (an adapter: HTTP and SMTP out; the use cases record them)."""
