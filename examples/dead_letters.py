"""Dead letters: a mail pool retries what fails, and parks poison jobs for later.

    python examples/dead_letters.py

The tree (one_for_one):

    dead_letters   a DeadLetterQueue: failed jobs, to inspect and replay
    mailer         a WorkerPool: sends each mail in a worker actor under its own
                   DynamicSupervisor, 3 attempts at most, backoff 50, 100 ms

What happens: four mails are submitted. Two go through at once; one hits a
temporary SMTP error and goes through on its second attempt; one is a
poison job (an address the mailer cannot parse) and fails every time: after
exactly 3 attempts it lands in the dead-letter queue, with its error and
traceback, and the pool carries on. We inspect it, "deploy a fix", replay
it, and it is sent. Finally, with undeliverable messages observed, a message
sent to an actor that has ended is recorded instead of vanishing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict

from asyncotp import (
    Backoff,
    Down,
    Supervisor,
    monitor,
    receive,
    run,
    send,
    spawn,
)
from asyncotp.resilience import (
    DeadLetterQueue,
    WorkerPool,
    observe_undeliverable,
)

attempts: Counter[str] = Counter()
sent: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
parser_fixed = False


def say(who: str, text: str) -> None:
    print(f"{who:<8} {text}", flush=True)


async def send_mail(address: str) -> str:
    """The job: send one mail. Raises on failure, like any real client would."""
    attempts[address] += 1
    await asyncio.sleep(0.01)  # talking to the SMTP server
    if address == "bob@example.com" and attempts[address] == 1:
        raise ConnectionError("421 service not available, try again later")
    if "@" not in address and not parser_fixed:
        raise ValueError(f"cannot parse the address {address!r}")
    say("worker", f"sent a mail to {address} (attempt {attempts[address]})")
    sent[address].set()
    return f"message-id <{sum(e.is_set() for e in sent.values())}@mailer>"


class Narrator(logging.Handler):
    """Prints the pool's retry and dead-letter reports from their structured fields."""

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        job_id = getattr(record, "job_id", "?")
        if event == "job_retry":
            say(
                "mailer", f"job {job_id} failed attempt {getattr(record, 'attempt', '?')}; retrying"
            )
        elif event == "job_dead":
            letter_id = getattr(record, "letter_id", "?")
            say("mailer", f"job {job_id} moved to the dead-letter queue as letter {letter_id}")


async def main() -> None:
    global parser_fixed
    logger = logging.getLogger("asyncotp")
    logger.addHandler(Narrator())
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the narrator says it all; no raw log lines

    await Supervisor.start(
        [
            DeadLetterQueue.child_spec(name="dead_letters"),
            WorkerPool.child_spec(
                send_mail,
                dead_letters="dead_letters",
                name="mailer",
                size=4,
                max_attempts=3,
                backoff=Backoff(initial=0.05, max=1.0, multiplier=2.0, jitter=0.0),
            ),
        ],
        name="mail",
    )

    say("client", "submitting 4 mails")
    addresses = ["ann@example.com", "bob@example.com", "carol@example.com", "dave at example"]
    results = await asyncio.gather(
        *(WorkerPool.run("mailer", address) for address in addresses), return_exceptions=True
    )
    for address, result in zip(addresses, results, strict=True):
        outcome = f"failed: {type(result).__name__}" if isinstance(result, Exception) else result
        say("client", f"{address:<18} -> {outcome}")

    stats = await WorkerPool.statistics("mailer")
    say("mailer", f"{stats!r}")

    [letter] = await DeadLetterQueue.letters("dead_letters")
    address = str(letter.job)
    say("dlq", f"letter {letter.id}: job {letter.job!r} from {letter.pool!r}")
    say(
        "dlq",
        f"  dead after exactly {letter.attempts} attempts (the handler ran "
        f"{attempts[address]} times)",
    )
    say("dlq", f"  last error: {letter.error}")
    say("dlq", f"  traceback ends with: {letter.traceback.strip().splitlines()[-2].strip()}")
    assert letter.attempts == attempts[address] == 3

    say("ops", "deploying a parser that understands 'x at y' addresses; replaying")
    parser_fixed = True
    job_id = await DeadLetterQueue.replay("dead_letters", letter.id)
    await sent[address].wait()
    say(
        "dlq",
        f"replayed letter {letter.id} as job {job_id}; letters left: "
        f"{len(await DeadLetterQueue.letters('dead_letters'))}",
    )

    say("ops", "observing undeliverable messages from now on")
    with observe_undeliverable("dead_letters") as observer:
        pid = spawn(asyncio.sleep, 0)
        monitor(pid)
        await receive(lambda m: isinstance(m, Down))
        send(pid, "are you there?")  # the actor has ended: undeliverable
        for record in await DeadLetterQueue.undeliverable("dead_letters"):
            say("dlq", f"undeliverable: {record.message!r} to {record.pid!r}")
    say("ops", f"undeliverable messages observed: {observer.seen}")
    print("done")


if __name__ == "__main__":
    run(main)
