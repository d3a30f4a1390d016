"""`annotator supervise`: the supervisors' console (issue 11).

One Textual app with role-dependent views: the live escalation list with its detail pane and the
clip's player (supervisors and admins), and the queue view (admins). `board.py` holds the list's
rules without Textual (filters, countdowns, what is new); `services.py` assembles the parts from
the annotator's own settings, client factory, keymap and players; `app.py` is the App;
`screens/` the views and the resolve dialog. The server side is `api/server` (supsrv's routes).
"""
