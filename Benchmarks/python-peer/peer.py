"""A throughput-minded Python peer of tearsheet-sync's broker path, for `tearsheet-bench peer`.

What a competent team would write with aio-pika and psycopg 3 against the same topology and
message format (../../../shared/contract.md), so the benchmark can say how far ahead of it the
Swift fleet is (issue 14 aims at 8x for publishing and 15x for the dedup path).

  peer.py publish AMQP_URL PAIRS_FILE
      Publishes every pair of PAIRS_FILE (one JSON object a line, the message body's fields)
      to `tearsheet.pairs`, persistent and confirmed, `window` confirms outstanding at once.
      Prints `publish_msgs_per_s N`.
  peer.py dedup AMQP_URL DATABASE_URL COUNT QUEUE...
      Drains the session queues (already full) as a worker's dedup path does: batches of
      200 per session, the batch's campaigns and the pairs already on them looked up in
      PostgreSQL, the batch acknowledged. Prints `dedup_pairs_per_s N` and `new_pairs N`
      (pairs not yet on their campaign: the benchmark expects none).

Output is `name value` lines, as the baselines print.
"""

import asyncio
import json
import sys
import time

import aio_pika
import psycopg
from pamqp.commands import Basic

EXCHANGE = "tearsheet.pairs"
MESSAGE_TYPE = "tearsheet.pair.v1"
WINDOW = 1024
BATCH = 200
BATCH_WAIT = 0.2


def message_for(pair):
    body = json.dumps(pair, separators=(",", ":"), sort_keys=True).encode()
    integration = pair["integrationId"]
    return aio_pika.Message(
        body,
        content_type="application/json",
        message_id=f"{integration}:{pair['campaignId']}:{pair['atsCandidateId']}",
        type=MESSAGE_TYPE,
        timestamp=int(time.time()),
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers={"session-id": integration},
    )


async def publish(amqp_url, pairs_file):
    with open(pairs_file) as lines:
        pairs = [json.loads(line) for line in lines if line.strip()]
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(EXCHANGE, ensure=False)
    started = time.perf_counter()
    # Each publish returns its confirm; `WINDOW` of them are awaited together.
    for start in range(0, len(pairs), WINDOW):
        chunk = pairs[start:start + WINDOW]
        confirms = await asyncio.gather(
            *(exchange.publish(message_for(pair), routing_key=pair["integrationId"], mandatory=True) for pair in chunk))
        if not all(isinstance(confirm, Basic.Ack) for confirm in confirms):
            raise SystemExit("the broker did not take every pair")
    seconds = time.perf_counter() - started
    await connection.close()
    print(f"publish_msgs_per_s {len(pairs) / seconds:.1f}")


async def drain_session(channel, queue_name, database_url, counts, done):
    """One session: its own channel and database connection, batches of `BATCH` pairs."""
    await channel.set_qos(prefetch_count=5 * BATCH)  # as our worker's default window
    queue = await channel.get_queue(queue_name, ensure=False)
    inbox = asyncio.Queue()

    # A coroutine: aio-pika wraps a plain function, and its check formats the bound method's
    # queue (every message in it) on each delivery.
    async def on_message(message):
        inbox.put_nowait(message)

    await queue.consume(on_message)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as database:
        while not done.is_set():
            try:
                batch = [await asyncio.wait_for(inbox.get(), timeout=BATCH_WAIT)]
            except asyncio.TimeoutError:
                continue
            deadline = time.perf_counter() + BATCH_WAIT
            while len(batch) < BATCH:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(inbox.get(), timeout=remaining))
                except asyncio.TimeoutError:
                    break
            pairs = [json.loads(message.body) for message in batch]
            campaign_ids = sorted({pair["campaignId"] for pair in pairs})
            candidate_ids = sorted({pair["atsCandidateId"] for pair in pairs})
            # One statement for both lookups, as our worker makes it: campaign rows carry no
            # candidate, pair rows only their two ids.
            rows = await (await database.execute(
                "SELECT id, integration_id, ats_job_id, active, NULL::bigint FROM campaigns WHERE id = ANY(%s)"
                " UNION ALL SELECT campaign_id, NULL, NULL, NULL, ats_candidate_id FROM campaign_candidates"
                " WHERE campaign_id = ANY(%s) AND ats_candidate_id = ANY(%s)",
                (campaign_ids, campaign_ids, candidate_ids))).fetchall()
            active = {row[0] for row in rows if row[4] is None and row[3]}
            existing = {(row[0], row[4]) for row in rows if row[4] is not None}
            counts["new"] += sum(
                1 for pair in pairs
                if pair["campaignId"] in active and (pair["campaignId"], pair["atsCandidateId"]) not in existing)
            await batch[-1].ack(multiple=True)
            counts["acknowledged"] += len(batch)
            if counts["acknowledged"] >= counts["expected"]:
                done.set()


async def dedup(amqp_url, database_url, count, queues):
    connection = await aio_pika.connect(amqp_url)
    counts = {"acknowledged": 0, "new": 0, "expected": count}
    done = asyncio.Event()
    channels = [await connection.channel() for _ in queues]
    started = time.perf_counter()
    sessions = [asyncio.create_task(drain_session(channel, queue, database_url, counts, done))
                for channel, queue in zip(channels, queues)]
    await done.wait()
    seconds = time.perf_counter() - started
    for session in sessions:
        session.cancel()
    await asyncio.gather(*sessions, return_exceptions=True)
    await connection.close()
    print(f"dedup_pairs_per_s {counts['acknowledged'] / seconds:.1f}")
    print(f"new_pairs {counts['new']}")


def main(arguments):
    if len(arguments) == 3 and arguments[0] == "publish":
        asyncio.run(publish(arguments[1], arguments[2]))
    elif len(arguments) >= 5 and arguments[0] == "dedup":
        asyncio.run(dedup(arguments[1], arguments[2], int(arguments[3]), arguments[4:]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
