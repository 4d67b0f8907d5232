"""The read side: every number the dashboard, the admin and the API show, one module per
page family. Definitions follow docs/metrics.md (their constants: events.metrics).

Each selector is a noun (what it returns), takes the subject first and keyword-only
filters after it, aggregates in SQL and runs a fixed number of queries whatever the data
size. Views and API views read only through these functions: they parse input with a
form or filterset, call a selector, render.

- common: scoping, raw SQL and median helpers
- status: tests by status, trend, transitions, time to fix
- owners: codeowners figures
- tests: the tests list, one test's timelines and history
- monitors: activations, active pairs, time to resolve, flapping, the monitor list
- investigations: confidence summary and list, investigation history
- deliveries: the delivery log
- history: the API's event history lists
- repositories: repositories with their test counts
"""
