#!/usr/bin/env python3
"""Ingest throughput: transaction Bundles posted to a running server, in resources per second.

    benches/ingest.py BASE CLIENTS DIR [DIR …]

Posts every `*.json` Bundle in the DIRs (sorted by name) to BASE (http://host:port/fhir/R4) as
they are, with `Prefer: return=minimal`, from CLIENTS threads at once (each takes the next Bundle
when it is done with one). Every Bundle must answer 200 with one `201 Created` per entry, else the
run stops. Prints the resources and Bundles written, the wall time, resources per second overall,
and the median and slowest Bundle time.
"""

import concurrent.futures
import json
import pathlib
import statistics
import sys
import time

import requests


def post_bundle(session, base, path):
    body = path.read_bytes()
    entries = len(json.loads(body)["entry"])
    started = time.perf_counter()
    response = session.post(
        base,
        data=body,
        headers={"Content-Type": "application/fhir+json", "Prefer": "return=minimal"},
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{path.name}: HTTP {response.status_code}: {response.text[:500]}")
    answered = response.json().get("entry", [])
    created = sum(1 for e in answered if e["response"]["status"].startswith("201"))
    if created != entries:
        raise SystemExit(f"{path.name}: {created} of {entries} entries created")
    return entries, elapsed


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    base, clients, dirs = sys.argv[1].rstrip("/"), int(sys.argv[2]), sys.argv[3:]
    files = sorted(p for d in dirs for p in pathlib.Path(d).glob("*.json"))
    if not files:
        raise SystemExit("no Bundles found")
    sessions = [requests.Session() for _ in range(clients)]
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [
            pool.submit(post_bundle, sessions[i % clients], base, path) for i, path in enumerate(files)
        ]
        results = [f.result() for f in futures]
    wall = time.perf_counter() - started
    resources = sum(n for n, _ in results)
    times = [t for _, t in results]
    print(f"{resources} resources in {len(files)} Bundles, {clients} client(s): {wall:.1f} s")
    print(f"{resources / wall:.0f} resources/s")
    print(f"per Bundle: median {statistics.median(times) * 1000:.0f} ms, slowest {max(times) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
