"""The webhook endpoint: the thin view (`views`) and `receive`, which verifies a Svix
delivery, stores it exactly once whatever its body, and projects it inline (a batch of
one) or leaves it for the projector.
"""
