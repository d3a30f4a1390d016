"""`annotator review`: the reviewer's screen (issue 12)."""
