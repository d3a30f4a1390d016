"""The console's screens: the escalations view, the queue view (admins), the resolve dialog."""
