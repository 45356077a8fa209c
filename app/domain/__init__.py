"""Pure rules of TasksGodzilla: no I/O, no SQL, no asyncio, no environment.

Pass values in, get decisions out.
"""
