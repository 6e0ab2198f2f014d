"""Tiny assertion helpers that work under CPython and MicroPython alike."""


def expect_raises(error_class, function, *args):
    """Call function(*args), which must raise error_class; return the exception."""
    try:
        function(*args)
    except error_class as error:
        return error
    raise AssertionError("%s was not raised" % error_class.__name__)


def of_type(events, event_class) -> list:
    return [event for event in events if isinstance(event, event_class)]
