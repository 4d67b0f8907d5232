"""Everything derived from deliveries, by one rule set.

- `fold`: the projection of each event type, in memory (pure: no database);
- `apply`: load the state a batch touches, fold the batch, write the difference (the
  receiver inline as a batch of one, and the projector);
- `entities`: find or create repositories, owners and monitors;
- `rebuild`: the same fold over every stored delivery, written in bulk;
- `replay`: reprocess stored deliveries one at a time;
- `projector`: apply pending deliveries in batches (FLAKYBOARD_DEFERRED_PROJECTION).
"""
