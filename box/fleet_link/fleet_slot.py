"""The fleet agent the daemon runs now. The owner can point the box at another broker from the dashboard: the
slot stops the running agent (its outbox keeps every record), then starts a new one with the new settings.
Start, stop and replace are called off the event loop (they join a thread)."""

import logging
import threading

from box.settings import Settings

log = logging.getLogger("mipai.fleet")

JOIN_SECONDS = 10.0
FLEET_BROKER_SETTING = "fleet.broker"  # the store's setting: the broker chosen on the dashboard (host, port, tls)
# The page's words for the agent's state.
NOT_CONFIGURED, CONNECTED, CONNECTING = "not configured", "connected", "not connected (trying)"


class FleetSlot:
    def __init__(self, settings: Settings, make_agent, feed) -> None:
        """`make_agent(fleet_settings, stop_event)` builds a FleetAgent; `feed` is the change feed it listens to."""
        self._lock = threading.Lock()  # guards the running agent
        self._turn = threading.Lock()  # one start, stop or replace at a time, so no agent is left running unseen
        self._closed = False
        self._make_agent = make_agent
        self._feed = feed
        self.settings = settings
        self._agent = None
        self._stop = None

    def start(self) -> None:
        with self._turn:
            self._start()

    def close(self, timeout: float = JOIN_SECONDS) -> None:
        """Stop the agent for good (the daemon is stopping): a later replace starts nothing."""
        with self._turn:
            self._closed = True
            self._stop_agent(timeout)

    def replace(self, settings: Settings) -> None:
        """Run the fleet agent with `settings` from now on (the old one stops first)."""
        with self._turn:
            self.settings = settings
            if not self._closed:
                self._stop_agent(JOIN_SECONDS)
                self._start()

    def _start(self) -> None:
        stop = threading.Event()
        agent = self._make_agent(self.settings.fleet, stop)
        with self._lock:
            self._agent, self._stop = agent, stop
        if agent.enabled:
            agent.start()
        else:
            log.info("no fleet broker configured ([fleet] broker_host): running on its own")

    def _stop_agent(self, timeout: float) -> None:
        with self._lock:
            agent, stop = self._agent, self._stop
            self._agent = None
        if agent is None:
            return
        if agent.enabled:
            stop.set()
            agent.join(timeout)
        self._feed.forget(agent.changes)

    def describe(self) -> dict:
        """What the page shows: broker host and port, TLS, and the connection's state."""
        fleet = self.settings.fleet
        with self._lock:
            agent = self._agent
        if not fleet.broker_host:
            state = NOT_CONFIGURED
        else:
            state = CONNECTED if agent is not None and agent.connected else CONNECTING
        return {"host": fleet.broker_host, "port": fleet.broker_port, "tls": fleet.tls, "state": state}
