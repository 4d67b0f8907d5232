"""Reading Trunk's webhooks: the payload reader (`reader`), the typed events and their
parsers (`parsing`), the registry of every event type with its parser, projection and
history relation (`registry`), and what a verified body is (`classify`).

The rest of flakyboard sees typed events only; no other module reads a payload key.
"""
