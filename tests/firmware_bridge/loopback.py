"""The host link and the virtual Marlin wired back to back in one process, on simulated time."""

from firmware_bridge import marlin
from firmware_bridge.streamer import hand_over_lines
from firmware_bridge.virtual_marlin import PrinterOptions, VirtualMarlin


class Loopback:
    def __init__(self, link: marlin.HostLink, options: PrinterOptions, seed: int = 0, step: float = 0.001) -> None:
        self.link = link
        self.recorded = []
        self.printer = VirtualMarlin(options, record=lambda command: self.recorded.append(command.decode()), seed=seed)
        self.now = 0.0
        self.step = step
        self.events = []

    def exchange(self) -> list:
        self.now += self.step
        out = self.link.data_to_send()
        if out:
            self.printer.receive_data(out, self.now)
        self.printer.tick(self.now)
        back = self.printer.output()
        events = self.link.receive_data(back, self.now) if back else []
        events += self.link.tick(self.now)
        self.events.extend(events)
        return events

    def connect(self, max_steps: int = 10000) -> None:
        for _ in range(max_steps):
            self.exchange()
            if self.link.state == marlin.READY:
                return
        raise AssertionError("no handshake: %r" % self.events[-5:])

    def print_job(self, commands, max_steps: int = 2000000) -> marlin.JobEnded:
        self.link.start_job()
        pending = iter(enumerate(commands, 1))
        for _ in range(max_steps):
            events = hand_over_lines(self.link, pending) if self.link.state == marlin.PRINTING else []
            for event in events + self.exchange():
                if isinstance(event, marlin.JobEnded):
                    return event
        raise AssertionError("the job did not end: %r" % self.events[-5:])
