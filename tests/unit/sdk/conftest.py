from tests.utils.sdk_guard import sdk_guard
from tests.utils.sink import sink

__all__ = ["sdk_guard", "sink"]
