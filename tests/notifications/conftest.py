from collections.abc import Iterator

import pytest

from tests.notifications.receivers import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local HTTP receiver on 127.0.0.1 (see receivers.py), stopped after the test."""
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()
