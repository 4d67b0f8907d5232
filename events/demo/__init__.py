"""A realistic, deterministic history of Trunk webhooks for demos, screenshots and load.

Pure functions only: the same arguments (seed and "now" included) give the same
payloads, byte for byte once serialised. `manage.py seed_demo` delivers them through the
real receiver; tests call these functions directly.

What the history looks like (shapes from ../shared/trunk-webhooks.md, built with
`events.demo.payloads` so the demo sends exactly what the parser expects):

- a few repositories (acme/checkout, acme/web, ...) with pytest, jest and JUnit style
  tests, codeowners (none, one or several; some spelled with another case in some tests,
  because owners compare case-insensitively), and a few platform variants;
- most tests stay healthy: a monitor blips active then resolved, nothing more;
- troubled tests go through episodes driven by monitors: the monitor turns `active`,
  the status goes HEALTHY -> FLAKY (or BROKEN; FLAKY may escalate to BROKEN and back),
  investigations complete, someone may quarantine the test, then the monitors resolve
  and the status returns to HEALTHY. Some episodes are still open at "now", and some
  tests relapse (flaky again within 30 days of the fix);
- the earliest status changes use the legacy v1 shape (as if the endpoint was upgraded);
- payloads come sorted by event time, except a small fraction delivered late, so the
  receiver's order independence is exercised. `plan_deliveries` adds svix ids and a
  few redeliveries of the same message.

The modules, each importing only from the ones before it:

- payloads.py: builders of Trunk payloads (the tests build theirs with it too);
- vocabulary.py: repositories, the words of test names, causes, people;
- population.py: the generator's state and ids, the repositories and tests;
- builders.py: one method per event type, building the payload at its event time;
- story.py: the histories (blips, episodes, relapses) and `generate_history`;
- deliveries.py: svix ids and redeliveries (`message_id_prefix`, `runs_prefix`,
  `plan_deliveries`).
"""

from .deliveries import REDELIVERY_FRACTION, message_id_prefix, plan_deliveries, runs_prefix
from .population import DEMO_NAMESPACE
from .story import MIN_DAYS, OUT_OF_ORDER_FRACTION, generate_history

__all__ = [
    "DEMO_NAMESPACE",
    "MIN_DAYS",
    "OUT_OF_ORDER_FRACTION",
    "REDELIVERY_FRACTION",
    "generate_history",
    "message_id_prefix",
    "plan_deliveries",
    "runs_prefix",
]
