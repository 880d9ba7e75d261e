#!/usr/bin/env python3
"""A TCP relay that holds every chunk for a fixed delay in each direction: the one-way delay of a
long link, which this machine's kernel cannot add (no netem). Used by scripts/bench-sync.

    delay-relay.py LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_MS
"""
import asyncio
import sys


async def pump(reader, writer, delay):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def drain():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except OSError:
            pass

    task = asyncio.create_task(drain())
    try:
        while True:
            data = await reader.read(65536)
            await queue.put((loop.time() + delay, data))
            if not data:
                break
    except OSError:
        await queue.put((loop.time(), b""))
    try:
        await task
    except OSError:
        pass
    writer.close()


async def main():
    listen, target, delay_ms = sys.argv[1], sys.argv[2], float(sys.argv[3])
    lh, lp = listen.rsplit(":", 1)
    th, tp = target.rsplit(":", 1)

    async def handle(r1, w1):
        try:
            r2, w2 = await asyncio.open_connection(th, int(tp))
        except OSError:
            w1.close()
            return
        await asyncio.gather(pump(r1, w2, delay_ms / 1000), pump(r2, w1, delay_ms / 1000))

    server = await asyncio.start_server(handle, lh, int(lp))
    print("relaying", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
